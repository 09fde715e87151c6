/* `spindle sweep`: requests/s and latency of every server model as the
 * number of concurrent connections climbs.
 *
 * For each model and each concurrency it starts a fresh `spindle serve
 * --model M --port 0` pinned to one CPU, waits for its READY line, runs the
 * load engine (src/load, in this process) pinned to another CPU with a
 * warm-up, and stops the server with SIGTERM.  A fresh server per point
 * keeps one level's leftovers (a leaked descriptor, a full accept queue, a
 * crashed worker) out of the next level's figure.  A failure (refused
 * connections, timeouts, a server that dies or never starts) is recorded
 * with its errors and the sweep goes on.
 *
 * The models are the ones `spindle serve --help` lists: the same table
 * (src/models/models.c) in this same executable, so a model this process
 * sees as built is one that `spindle serve` can run.
 *
 * Output goes into one folder: table.txt (the classic "1: 909.27  2: ..."
 * lines), table.md, results.csv, results.jsonl, the gnuplot script and,
 * when gnuplot is installed, rps.svg and p99.svg. */
#define _GNU_SOURCE
#include <spindle.h>
#include <spindle/load.h>

#include "models/model.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

/* `spindle serve` itself; NULL while tools/serve.c is not built. */
int spindle_serve(int argc, char **argv) __attribute__((weak));

/* Time budgets for the default duration: a default sweep over every model
 * must end within 10 minutes, a --quick one within 2; these leave room for
 * the servers' starts and stops, which are measured as the sweep goes. */
#define BUDGET_DEFAULT_S 480.0
#define BUDGET_QUICK_S 90.0
#define DURATION_MIN_S 0.15
#define DURATION_MAX_S 10.0
#define WARMUP_DEFAULT_S 0.5
#define WARMUP_QUICK_S 0.15
/* Opening connections is part of the warm-up: a burst of thousands of
 * connects overflows a listener's queues, and a dropped SYN is retried after
 * a second; 10,000 connections get two more seconds. */
#define WARMUP_PER_CONN_S 200e-6
/* Estimated start + stop of a server, until measured. */
#define OVERHEAD_GUESS_S 0.3
/* The classic table: ApacheBench's -n 10000 at each level, backlog 5. */
#define CLASSIC_REQUESTS 10000
#define CLASSIC_BACKLOG 5
/* A classic level stops after this long even if its requests are not all
 * done (a model refusing connections would otherwise take 10,000 timeouts). */
#define CLASSIC_LIMIT_S 60.0
#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define MAX_MODELS 64
#define MAX_CONCS 64
#define MAX_CMD_ARGS 32

static const char default_conc[] = "1,2,3,4,10,50,100,200,500,1000,10000";

static const char usage_text[] =
    "usage: spindle sweep [options]\n"
    "\n"
    "Requests/s and latency of each server model as concurrency climbs: for each model\n"
    "and each concurrency, a fresh `spindle serve --model M --port 0` pinned to one CPU,\n"
    "the load (in this process) pinned to another, a warm-up, the measured run, SIGTERM.\n"
    "\n"
    "  --models LIST      'all' (default) or names from `spindle serve --help`, comma-separated\n"
    "  --conc LIST        concurrency levels (default 1,2,3,4,10,50,100,200,500,1000,10000)\n"
    "  --duration T       measured time per level (default: what fits a sweep of every\n"
    "                     model in under 10 minutes, at most 10s)\n"
    "  --quick            short levels: a sweep of every model in under 2 minutes\n"
    "  --warmup T         uncounted run before each level (default 0.5s, --quick 0.15s,\n"
    "                     plus 200us a connection)\n"
    "  --no-keepalive     a connection per request\n"
    "  --classic          the classic fork-vs-thread table: no keep-alive, -n 10000 at\n"
    "                     each level (as ApacheBench), listen backlog 5\n"
    "  --requests N       with --classic: requests per level (default 10000)\n"
    "  --backlog N        the servers' listen backlog (default: theirs; --classic: 5)\n"
    "  --path P           the request path (default /; e.g. /sleep?ms=10)\n"
    "  --threads N        load engine threads (default 1)\n"
    "  --timeout T        per request (default 10s)\n"
    "  --out DIR          where the results go (default sweep-YYYYmmdd-HHMMSS)\n"
    "  --json             one JSON object per level on stdout instead of the tables\n"
    "  --server-cmd CMD   run CMD --model M --port 0 instead of `spindle serve` (for tests\n"
    "                     and for other servers that print READY <port>; words split at\n"
    "                     spaces; --models must then name the models)\n"
    "  -h, --help         this text\n";

typedef struct point {
    int conc;
    int ran;               /* 0: the server never became ready */
    sp_load_result res;
    char note[320];        /* why it failed, or what went wrong around it */
} point;

typedef struct model_run {
    const char *name;
    const char *not_built; /* non-NULL: skipped, and why */
    point *points;         /* one per concurrency */
} model_run;

typedef struct sweep {
    const char *models_arg;
    int concs[MAX_CONCS];
    int nconc;
    double duration_s;     /* 0: from the budget */
    double warmup_s;       /* < 0: the default */
    int quick, classic, keepalive, json, threads;
    uint64_t requests;     /* classic: per level */
    int backlog;           /* 0: the server's default */
    const char *path;
    int64_t timeout_ns;
    const char *out;
    char outbuf[PATH_MAX];
    char *server_cmd[MAX_CMD_ARGS];
    int nserver_cmd;
    char server_cmd_buf[1024];
    char self[PATH_MAX];
    model_run models[MAX_MODELS];
    int nmodels;
    /* CPUs: the server's and the load's (-1: not pinned, one CPU only). */
    int cpu_server, cpu_load;
    /* Progress. */
    int tty;
    int done_points, total_points;
    double overhead_s;     /* measured start + stop, running mean */
    const char *cur_model;
    int cur_conc;
    double cur_span_s;     /* warm-up + run of the current point */
} sweep;

static volatile sig_atomic_t interrupted;
static volatile pid_t server_pgid; /* the running server's group, for signals */

static int refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("spindle sweep: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(spindle sweep --help for the options)\n", stderr);
    return 2;
}

static double now_s(void) { return (double)sp_now() / 1e9; }

/* ---- options ------------------------------------------------------------------- */

static int parse_conc_list(sweep *sw, const char *s)
{
    sw->nconc = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 1000000 || (*end && *end != ','))
            return -1;
        if (sw->nconc == MAX_CONCS)
            return -1;
        sw->concs[sw->nconc++] = (int)v;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return -1; /* a trailing comma */
    }
    return sw->nconc ? 0 : -1;
}

static int split_cmd(sweep *sw, const char *cmd)
{
    if (strlen(cmd) >= sizeof sw->server_cmd_buf)
        return -1;
    strcpy(sw->server_cmd_buf, cmd);
    sw->nserver_cmd = 0;
    for (char *save = NULL, *w = strtok_r(sw->server_cmd_buf, " \t", &save); w;
         w = strtok_r(NULL, " \t", &save)) {
        if (sw->nserver_cmd == MAX_CMD_ARGS - 8)
            return -1;
        sw->server_cmd[sw->nserver_cmd++] = w;
    }
    return sw->nserver_cmd ? 0 : -1;
}

/* Resolves --models against the model table.  Returns 0 or 2 (refused). */
static int resolve_models(sweep *sw)
{
    const char *arg = sw->models_arg ? sw->models_arg : "all";
    if (sw->nserver_cmd && !strcmp(arg, "all"))
        return refuse("with --server-cmd, --models must name the models");
    if (!strcmp(arg, "all")) {
        for (const sp_model_entry *e = sp_model_table; e->name && sw->nmodels < MAX_MODELS; e++) {
            model_run *m = &sw->models[sw->nmodels++];
            m->name = e->name;
            if (!spindle_serve)
                m->not_built = "spindle serve is not built yet";
            else if (!e->model || !e->model->serve)
                m->not_built = e->pending;
        }
        return 0;
    }
    static char buf[1024];
    if (strlen(arg) >= sizeof buf)
        return refuse("--models list too long");
    strcpy(buf, arg);
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (sw->nmodels == MAX_MODELS)
            return refuse("at most %d models", MAX_MODELS);
        for (int i = 0; i < sw->nmodels; i++)
            if (!strcmp(sw->models[i].name, w))
                return refuse("model '%s' named twice", w);
        model_run *m = &sw->models[sw->nmodels++];
        m->name = w;
        if (sw->nserver_cmd)
            continue; /* the command knows its own models */
        const sp_model_entry *e = sp_model_find(w);
        if (!e) {
            char names[512] = "";
            size_t n = 0;
            for (const sp_model_entry *x = sp_model_table; x->name; x++)
                n += (size_t)snprintf(names + n, n < sizeof names ? sizeof names - n : 0, "%s%s",
                                      n ? ", " : "", x->name);
            return refuse("unknown model '%s' (the models: %s)", w, names);
        }
        if (!spindle_serve)
            m->not_built = "spindle serve is not built yet";
        else if (!e->model || !e->model->serve)
            m->not_built = e->pending;
    }
    return sw->nmodels ? 0 : refuse("--models names no model");
}

static int parse_args(int argc, char **argv, sweep *sw)
{
    memset(sw, 0, sizeof *sw);
    sw->keepalive = 1;
    sw->threads = 1;
    sw->warmup_s = -1;
    sw->path = "/";
    int requests_given = 0, keepalive_given = 0;
    const char *conc = default_conc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        /* Every option but the flags takes a value: "--opt v" or "--opt=v". */
        static const char *const with_value[] = {
            "--models", "--conc", "--duration", "--warmup", "--requests", "--backlog",
            "--path", "--threads", "--timeout", "--out", "--server-cmd"};
        char name[32];
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof name)
            return refuse("unknown option '%s'", a);
        memcpy(name, a, nl);
        name[nl] = 0;
        int takes = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            takes |= !strcmp(name, with_value[k]);
        if (takes) {
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return refuse("%s needs a value", name);
        } else if (eq) {
            return refuse("unknown option '%s'", a);
        }
        int64_t ns;
        char *end;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 1;
        } else if (!strcmp(name, "--quick")) {
            sw->quick = 1;
        } else if (!strcmp(name, "--classic")) {
            sw->classic = 1;
        } else if (!strcmp(name, "--no-keepalive")) {
            sw->keepalive = 0;
            keepalive_given = 1;
        } else if (!strcmp(name, "--json")) {
            sw->json = 1;
        } else if (!strcmp(name, "--models")) {
            sw->models_arg = v;
        } else if (!strcmp(name, "--conc")) {
            conc = v;
        } else if (!strcmp(name, "--duration")) {
            if (sp_load_parse_duration(v, &ns) < 0 || ns < 10000000)
                return refuse("--duration wants a duration of at least 10ms, such as 3s, "
                              "not '%s'", v);
            sw->duration_s = (double)ns / 1e9;
        } else if (!strcmp(name, "--warmup")) {
            if (sp_load_parse_duration(v, &ns) < 0)
                return refuse("--warmup wants a duration such as 500ms, not '%s'", v);
            sw->warmup_s = (double)ns / 1e9;
        } else if (!strcmp(name, "--timeout")) {
            if (sp_load_parse_duration(v, &ns) < 0 || ns <= 0)
                return refuse("--timeout wants a duration such as 10s, not '%s'", v);
            sw->timeout_ns = ns;
        } else if (!strcmp(name, "--requests")) {
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || end == v || *end || n < 1)
                return refuse("--requests wants a count of at least 1, not '%s'", v);
            sw->requests = (uint64_t)n;
            requests_given = 1;
        } else if (!strcmp(name, "--backlog")) {
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || end == v || *end || n < 1 || n > 65535)
                return refuse("--backlog wants a number from 1 to 65535, not '%s'", v);
            sw->backlog = (int)n;
        } else if (!strcmp(name, "--threads")) {
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || end == v || *end || n < 1 || n > 256)
                return refuse("--threads wants a number from 1 to 256, not '%s'", v);
            sw->threads = (int)n;
        } else if (!strcmp(name, "--path")) {
            if (v[0] != '/' || strpbrk(v, " \t\r\n#"))
                return refuse("--path wants a path starting with '/', without spaces, "
                              "not '%s'", v);
            sw->path = v;
        } else if (!strcmp(name, "--out")) {
            if (!*v)
                return refuse("--out wants a folder name");
            sw->out = v;
        } else if (!strcmp(name, "--server-cmd")) {
            if (split_cmd(sw, v) < 0)
                return refuse("--server-cmd wants a command of at most %d words, not '%s'",
                              MAX_CMD_ARGS - 8, v);
        } else {
            return refuse("unknown option '%s'", a);
        }
    }
    if (parse_conc_list(sw, conc) < 0)
        return refuse("--conc wants a comma-separated list of numbers from 1 to 1000000 "
                      "(at most %d), not '%s'", MAX_CONCS, conc);
    if (requests_given && !sw->classic)
        return refuse("--requests goes with --classic (the other sweeps run for a duration)");
    if (sw->classic) {
        if (keepalive_given)
            fprintf(stderr, "spindle sweep: note: --classic is always without keep-alive\n");
        sw->keepalive = 0;
        if (!sw->requests)
            sw->requests = CLASSIC_REQUESTS;
        if (!sw->backlog)
            sw->backlog = CLASSIC_BACKLOG;
        if (sw->duration_s)
            return refuse("--classic runs -n %" PRIu64 " requests a level, not a duration "
                          "(drop --duration, or use --no-keepalive)", sw->requests);
    }
    for (int i = 0; i < sw->nconc; i++)
        if (sw->concs[i] < sw->threads)
            return refuse("--threads %d is more than the concurrency %d", sw->threads,
                          sw->concs[i]);
    return resolve_models(sw);
}

/* ---- CPUs ------------------------------------------------------------------------ */

/* The server on the first CPU this process may use, the load on the second;
 * on one CPU nothing is pinned (and the output says so). */
static void choose_cpus(sweep *sw)
{
    cpu_set_t set;
    sw->cpu_server = sw->cpu_load = -1;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        if (sw->cpu_server < 0) {
            sw->cpu_server = c;
        } else {
            sw->cpu_load = c;
            break;
        }
    }
    if (sw->cpu_load < 0)
        sw->cpu_server = -1;
}

static void pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* ---- the server ------------------------------------------------------------------ */

typedef struct server {
    pid_t pid;
    int out;      /* its stdout (a pipe) */
    int port;
    int exited;   /* it ended by itself: `status` says how */
    int status;
} server;

static void describe_status(int status, char *buf, size_t n)
{
    if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(buf, n, "ended (status %#x)", status);
}

/* The child: its own process group (so a model's worker processes are
 * signalled with it), pinned, stdout into the pipe, stderr into the log. */
static void server_child(const sweep *sw, const char *model, int out, int log)
{
    setpgid(0, 0);
    if (sw->cpu_server >= 0)
        pin_self(sw->cpu_server);
    dup2(out, STDOUT_FILENO);
    if (log >= 0)
        dup2(log, STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    char backlog[16];
    char *argv[MAX_CMD_ARGS + 8];
    int n = 0;
    if (sw->nserver_cmd) {
        for (int i = 0; i < sw->nserver_cmd; i++)
            argv[n++] = sw->server_cmd[i];
    } else {
        argv[n++] = (char *)sw->self;
        argv[n++] = "serve";
    }
    argv[n++] = "--model";
    argv[n++] = (char *)model;
    argv[n++] = "--port";
    argv[n++] = "0";
    if (sw->backlog) {
        snprintf(backlog, sizeof backlog, "%d", sw->backlog);
        argv[n++] = "--backlog";
        argv[n++] = backlog;
    }
    argv[n] = NULL;
    execvp(argv[0], argv);
    fprintf(stderr, "spindle sweep: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Waits for "READY <port>" on the server's stdout.  Returns 0, or -1 with
 * why in `why`. */
static int server_ready(server *s, char *why, size_t whylen)
{
    char buf[1024];
    size_t have = 0;
    int64_t deadline = sp_now() + (int64_t)READY_TIMEOUT_MS * 1000000;
    for (;;) {
        int64_t left = (deadline - sp_now()) / 1000000;
        if (left <= 0) {
            snprintf(why, whylen, "no READY line within %d s", READY_TIMEOUT_MS / 1000);
            return -1;
        }
        struct pollfd p = {.fd = s->out, .events = POLLIN};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR) {
            if (interrupted) {
                snprintf(why, whylen, "interrupted");
                return -1;
            }
            continue;
        }
        if (rc <= 0)
            continue;
        ssize_t n = read(s->out, buf + have, sizeof buf - 1 - have);
        if (n <= 0) {
            /* Its stdout closed: it ended (or closed it) before READY. */
            if (waitpid(s->pid, &s->status, 0) == s->pid) {
                s->exited = 1;
                char how[96];
                describe_status(s->status, how, sizeof how);
                snprintf(why, whylen, "the server %s before READY%s", how,
                         WIFEXITED(s->status) && WEXITSTATUS(s->status) == 3
                             ? " (model not built)"
                             : "");
            } else {
                snprintf(why, whylen, "the server closed its stdout before READY");
            }
            return -1;
        }
        have += (size_t)n;
        buf[have] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = 0;
            int port;
            if (sscanf(line, "READY %d", &port) == 1 && port > 0 && port < 65536) {
                s->port = port;
                return 0;
            }
            line = nl + 1;
        }
        /* Keep the unfinished line; drop what was read before it. */
        have = strlen(line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0;
    }
}

static int server_start(const sweep *sw, const char *model, server *s, char *why, size_t whylen)
{
    memset(s, 0, sizeof *s);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        return -1;
    }
    char logpath[PATH_MAX + 32];
    snprintf(logpath, sizeof logpath, "%s/server-%s.log", sw->out, model);
    int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        if (log >= 0)
            close(log);
        return -1;
    }
    if (pid == 0)
        server_child(sw, model, p[1], log);
    setpgid(pid, pid); /* also here: no race with a signal before the child's */
    close(p[1]);
    if (log >= 0)
        close(log);
    s->pid = pid;
    s->out = p[0];
    server_pgid = pid;
    return server_ready(s, why, whylen);
}

/* Whether the server ended by itself (crashed, exited) while we loaded it. */
static void server_check(server *s)
{
    if (!s->exited && waitpid(s->pid, &s->status, WNOHANG) == s->pid)
        s->exited = 1;
}

/* SIGTERM to its group, SIGKILL after STOP_TIMEOUT_MS.  Returns 1 if it had
 * to be killed. */
static int server_stop(server *s)
{
    int killed = 0;
    if (!s->exited) {
        kill(-s->pid, SIGTERM);
        int64_t deadline = sp_now() + (int64_t)STOP_TIMEOUT_MS * 1000000;
        for (;;) {
            pid_t r = waitpid(s->pid, &s->status, WNOHANG);
            if (r == s->pid || (r < 0 && errno != EINTR))
                break;
            if (sp_now() > deadline) {
                kill(-s->pid, SIGKILL);
                waitpid(s->pid, &s->status, 0);
                killed = 1;
                break;
            }
            usleep(5000);
        }
    }
    /* Workers of its group that outlived it. */
    kill(-s->pid, SIGKILL);
    server_pgid = 0;
    close(s->out);
    return killed;
}

/* ---- progress ---------------------------------------------------------------------- */

static double point_span_s(const sweep *sw, int conc)
{
    double w = sw->warmup_s + WARMUP_PER_CONN_S * conc;
    return w + sw->duration_s;
}

static double time_left_s(const sweep *sw, double into_current)
{
    double left = sw->cur_span_s - into_current;
    if (left < 0)
        left = 0;
    int after = sw->total_points - sw->done_points - 1;
    /* The points still to come, at the mean of the default list's spans. */
    for (int m = 0, k = 0; m < sw->nmodels && after > 0; m++) {
        if (sw->models[m].not_built)
            continue;
        for (int c = 0; c < sw->nconc; c++, k++)
            if (k > sw->done_points)
                left += point_span_s(sw, sw->concs[c]) + sw->overhead_s;
    }
    return left;
}

static void fmt_left(char *buf, size_t n, double s)
{
    if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%.0fs", s);
}

static void on_progress(void *arg, double elapsed_s)
{
    sweep *sw = arg;
    if (!sw->tty)
        return;
    char left[32];
    fmt_left(left, sizeof left, time_left_s(sw, elapsed_s));
    fprintf(stderr, "\r\033[K[%d/%d] %s  conc %d  %.0f/%.0fs  about %s left",
            sw->done_points + 1, sw->total_points, sw->cur_model, sw->cur_conc, elapsed_s,
            sw->cur_span_s, left);
    fflush(stderr);
}

/* ---- one point ---------------------------------------------------------------------- */

static void run_point(sweep *sw, model_run *m, point *pt)
{
    server srv;
    char why[256];
    double t_start = now_s();
    sw->cur_model = m->name;
    sw->cur_conc = pt->conc;
    sw->cur_span_s = point_span_s(sw, pt->conc);
    on_progress(sw, 0);
    if (server_start(sw, m->name, &srv, why, sizeof why) < 0) {
        snprintf(pt->note, sizeof pt->note, "%s", why);
        if (srv.pid > 0)
            server_stop(&srv);
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv.port, sw->path);
    sp_load_opts o = {
        .url = url,
        .conns = pt->conc,
        .threads = sw->threads,
        .keepalive = sw->keepalive,
        .timeout_ns = sw->timeout_ns,
        .warmup_ns = (int64_t)((sw->warmup_s + WARMUP_PER_CONN_S * pt->conc) * 1e9),
        .progress = on_progress,
        .progress_arg = sw,
    };
    if (sw->classic) {
        o.requests = sw->requests;
        o.limit_ns = (int64_t)(CLASSIC_LIMIT_S * 1e9);
    } else {
        o.duration_ns = (int64_t)(sw->duration_s * 1e9);
    }
    double t_load = now_s();
    pin_self(sw->cpu_load);
    char err[256];
    int rc = sp_load_run(&o, &pt->res, err, sizeof err);
    double load_s = now_s() - t_load;
    server_check(&srv);
    int was_dead = srv.exited;
    int killed = server_stop(&srv);
    if (rc < 0) {
        snprintf(pt->note, sizeof pt->note, "load did not run: %s", err);
        return;
    }
    pt->ran = 1;
    if (was_dead) {
        char how[96];
        describe_status(srv.status, how, sizeof how);
        snprintf(pt->note, sizeof pt->note, "the server %s during the run", how);
    } else if (killed) {
        snprintf(pt->note, sizeof pt->note, "the server ignored SIGTERM for %d s: killed",
                 STOP_TIMEOUT_MS / 1000);
    } else if (pt->res.requests == 0) {
        snprintf(pt->note, sizeof pt->note, "no response within the run (%" PRIu64
                 " requests in flight at its end)", pt->res.unfinished);
    } else if (pt->res.limit_hit) {
        snprintf(pt->note, sizeof pt->note, "stopped at the %.0f s limit after %" PRIu64
                 " of %" PRIu64 " requests", CLASSIC_LIMIT_S, pt->res.attempted, sw->requests);
    }
    /* What the point cost beyond its planned span: the next estimates. */
    double over = (now_s() - t_start) - load_s;
    sw->overhead_s = sw->done_points ? (sw->overhead_s * 3 + over) / 4 : over;
}

/* ---- output --------------------------------------------------------------------------- */

static int point_failed(const point *pt)
{
    return !pt->ran || sp_load_errors(&pt->res) > 0 || pt->res.requests == 0 || pt->note[0];
}

static double point_rps(const point *pt)
{
    return pt->ran ? (double)pt->res.requests / pt->res.elapsed_s : 0.0;
}

static double p_us(const point *pt, double p)
{
    return pt->ran ? (double)sp_hist_percentile(&pt->res.hist, p) / 1e3 : 0.0;
}

static void write_json_point(FILE *f, const sweep *sw, const model_run *m, const point *pt)
{
    const sp_load_result *r = &pt->res;
    fprintf(f, "{\"model\":");
    spindle_json_string(f, m->name);
    fprintf(f, ",\"conc\":%d,\"rps\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f"
               ",\"p999_us\":%.1f,\"max_us\":%.1f,\"requests\":%" PRIu64 ",\"errors\":%" PRIu64,
            pt->conc, point_rps(pt), p_us(pt, 50), p_us(pt, 90), p_us(pt, 99), p_us(pt, 99.9),
            pt->ran && r->hist.count ? (double)r->hist.max_ns / 1e3 : 0.0, r->requests,
            sp_load_errors(r));
    for (int k = 0; k < SP_LOAD_ERR_N; k++)
        fprintf(f, ",\"errors_%s\":%" PRIu64, sp_load_err_name(k), r->errors[k]);
    fprintf(f, ",\"unfinished\":%" PRIu64 ",\"keepalive\":%s,\"duration_s\":%.3f,\"path\":",
            r->unfinished, sw->keepalive ? "true" : "false", r->elapsed_s);
    spindle_json_string(f, sw->path);
    if (!pt->ran)
        fprintf(f, ",\"failed\":true");
    if (pt->note[0]) {
        fprintf(f, ",\"note\":");
        spindle_json_string(f, pt->note);
    }
    fprintf(f, "}\n");
}

static void write_json_skip(FILE *f, const model_run *m)
{
    fprintf(f, "{\"model\":");
    spindle_json_string(f, m->name);
    fprintf(f, ",\"skipped\":");
    char why[256];
    snprintf(why, sizeof why, "not built: %s", m->not_built);
    spindle_json_string(f, why);
    fprintf(f, "}\n");
}

static const char *mode_words(const sweep *sw, char *buf, size_t n)
{
    if (sw->classic)
        snprintf(buf, n, "no keep-alive, %" PRIu64 " requests a level, backlog %d, %s",
                 sw->requests, sw->backlog, sw->path);
    else
        snprintf(buf, n, "%s, %.2fs a level after a %.2fs warm-up, %s",
                 sw->keepalive ? "keep-alive" : "no keep-alive", sw->duration_s, sw->warmup_s,
                 sw->path);
    return buf;
}

/* The classic table: "  1: 909.27  2: 3778.38 ..." with (error) marks. */
static void write_classic(FILE *f, const sweep *sw)
{
    char mode[160];
    fprintf(f, "requests/s by concurrency (%s)\n", mode_words(sw, mode, sizeof mode));
    for (int i = 0; i < sw->nmodels; i++) {
        const model_run *m = &sw->models[i];
        fprintf(f, "\n%s\n", m->name);
        if (m->not_built) {
            fprintf(f, "  not built: %s\n", m->not_built);
            continue;
        }
        int col = 0;
        for (int c = 0; c < sw->nconc; c++) {
            const point *pt = &m->points[c];
            char cell[64];
            if (!pt->ran)
                snprintf(cell, sizeof cell, "%d: - (error)", pt->conc);
            else
                snprintf(cell, sizeof cell, "%d: %.2f%s", pt->conc, point_rps(pt),
                         point_failed(pt) ? " (error)" : "");
            if (col && col + (int)strlen(cell) > 76) {
                fputc('\n', f);
                col = 0;
            }
            col += fprintf(f, "%s%s", col ? "  " : "  ", cell);
        }
        fputc('\n', f);
        for (int c = 0; c < sw->nconc; c++) {
            const point *pt = &m->points[c];
            if (!point_failed(pt))
                continue;
            const sp_load_result *r = &pt->res;
            fprintf(f, "    (error) at %d: ", pt->conc);
            if (pt->ran)
                fprintf(f, "%" PRIu64 " errors (connect %" PRIu64 ", read %" PRIu64
                           ", write %" PRIu64 ", timeout %" PRIu64 ", status %" PRIu64 ")",
                        sp_load_errors(r), r->errors[0], r->errors[1], r->errors[2],
                        r->errors[3], r->errors[4]);
            if (pt->note[0])
                fprintf(f, "%s%s", pt->ran ? "; " : "", pt->note);
            fputc('\n', f);
        }
    }
}

static void write_markdown(FILE *f, const sweep *sw)
{
    char mode[160];
    fprintf(f, "Requests/s by model and concurrency (%s). \"err N\": N requests failed; "
               "\"none done\": no response within the run; \"failed\": no measurement; "
               "details in table.txt.\n\n| model |",
            mode_words(sw, mode, sizeof mode));
    for (int c = 0; c < sw->nconc; c++)
        fprintf(f, " %d |", sw->concs[c]);
    fprintf(f, "\n|---|");
    for (int c = 0; c < sw->nconc; c++)
        fprintf(f, "---:|");
    fputc('\n', f);
    for (int i = 0; i < sw->nmodels; i++) {
        const model_run *m = &sw->models[i];
        fprintf(f, "| %s |", m->name);
        for (int c = 0; c < sw->nconc; c++) {
            if (m->not_built) {
                fprintf(f, " not built |");
                continue;
            }
            const point *pt = &m->points[c];
            if (!pt->ran)
                fprintf(f, " failed |");
            else if (sp_load_errors(&pt->res))
                fprintf(f, " %.0f (err %" PRIu64 ") |", point_rps(pt), sp_load_errors(&pt->res));
            else if (!pt->res.requests)
                fprintf(f, " 0 (none done) |");
            else
                fprintf(f, " %.0f%s |", point_rps(pt), pt->note[0] ? " (!)" : "");
        }
        fputc('\n', f);
    }
}

static void write_csv(FILE *f, const sweep *sw)
{
    fprintf(f, "model,conc,keepalive,requests,rps,p50_us,p90_us,p99_us,p999_us,max_us,errors,"
               "errors_connect,errors_read,errors_write,errors_timeout,errors_status,"
               "unfinished,duration_s,note\n");
    for (int i = 0; i < sw->nmodels; i++) {
        const model_run *m = &sw->models[i];
        if (m->not_built) {
            fprintf(f, "%s,,,,,,,,,,,,,,,,,,\"not built: %s\"\n", m->name, m->not_built);
            continue;
        }
        for (int c = 0; c < sw->nconc; c++) {
            const point *pt = &m->points[c];
            const sp_load_result *r = &pt->res;
            fprintf(f, "%s,%d,%d,%" PRIu64 ",%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%" PRIu64, m->name,
                    pt->conc, sw->keepalive, r->requests, point_rps(pt), p_us(pt, 50),
                    p_us(pt, 90), p_us(pt, 99), p_us(pt, 99.9),
                    pt->ran && r->hist.count ? (double)r->hist.max_ns / 1e3 : 0.0,
                    sp_load_errors(r));
            for (int k = 0; k < SP_LOAD_ERR_N; k++)
                fprintf(f, ",%" PRIu64, r->errors[k]);
            fprintf(f, ",%" PRIu64 ",%.3f,\"", r->unfinished, r->elapsed_s);
            for (const char *s = pt->note; *s; s++)
                fputs(*s == '"' ? "\"\"" : (char[]){*s, 0}, f);
            fprintf(f, "\"\n");
        }
    }
}

/* gnuplot, one line per model; points of a level with errors ringed red. */
static const char plot_script[] =
    "# Written by spindle sweep; run `gnuplot plot.gp` in this folder to redraw.\n"
    "set terminal svg size 960,600 dynamic enhanced font 'sans,12' background rgb 'white'\n"
    "set logscale x\n"
    "set xlabel 'concurrent connections'\n"
    "set key outside right top\n"
    "set grid\n"
    "n = words(models)\n"
    "set output 'rps.svg'\n"
    "set title sprintf('requests/s by concurrency (%s)', mode)\n"
    "set ylabel 'requests/s'\n"
    "set yrange [0:*]\n"
    "plot for [i=1:n] sprintf('data/%s.dat', word(models, i)) using 1:2 with linespoints "
    "lw 2 title word(models, i), \\\n"
    "     for [i=1:n] sprintf('data/%s.dat', word(models, i)) using 1:($4 > 0 ? $2 : 1/0) "
    "with points pt 6 ps 2 lc rgb 'red' title (i == 1 ? 'had errors' : '')\n"
    "set output 'p99.svg'\n"
    "set title sprintf('p99 latency by concurrency (%s)', mode)\n"
    "set ylabel 'p99 latency (ms)'\n"
    "set logscale y\n"
    "set yrange [*:*]\n"
    "plot for [i=1:n] sprintf('data/%s.dat', word(models, i)) using 1:($3 > 0 ? $3 / 1000 : "
    "1/0) with linespoints lw 2 title word(models, i), \\\n"
    "     for [i=1:n] sprintf('data/%s.dat', word(models, i)) using 1:($4 > 0 && $3 > 0 ? "
    "$3 / 1000 : 1/0) with points pt 6 ps 2 lc rgb 'red' title (i == 1 ? 'had errors' : '')\n";

static int find_in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char buf[PATH_MAX];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        if (n && n + strlen(prog) + 2 < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
            if (access(buf, X_OK) == 0)
                return 1;
        }
        p += n;
        if (*p)
            p++;
    }
    return 0;
}

/* Writes data/<model>.dat and plot.gp, and runs gnuplot if it is there.
 * Returns 1 if the plots were drawn. */
static int write_plots(const sweep *sw, char *why, size_t whylen)
{
    char path[PATH_MAX + 64], models[1024] = "";
    size_t ml = 0;
    snprintf(path, sizeof path, "%s/data", sw->out);
    mkdir(path, 0755);
    for (int i = 0; i < sw->nmodels; i++) {
        const model_run *m = &sw->models[i];
        if (m->not_built)
            continue;
        int any = 0;
        for (int c = 0; c < sw->nconc; c++)
            any |= m->points[c].ran && m->points[c].res.requests > 0;
        if (!any)
            continue; /* gnuplot refuses a file with no point at all */
        snprintf(path, sizeof path, "%s/data/%s.dat", sw->out, m->name);
        FILE *f = fopen(path, "w");
        if (!f)
            continue;
        fprintf(f, "# conc rps p99_us errors\n");
        for (int c = 0; c < sw->nconc; c++) {
            const point *pt = &m->points[c];
            if (pt->ran)
                fprintf(f, "%d %.1f %.1f %" PRIu64 "\n", pt->conc, point_rps(pt), p_us(pt, 99),
                        sp_load_errors(&pt->res));
        }
        fclose(f);
        ml += (size_t)snprintf(models + ml, ml < sizeof models ? sizeof models - ml : 0, "%s%s",
                               ml ? " " : "", m->name);
    }
    if (!ml) {
        snprintf(why, whylen, "no model was measured");
        return 0;
    }
    snprintf(path, sizeof path, "%s/plot.gp", sw->out);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(why, whylen, "cannot write %.400s: %s", path, strerror(errno));
        return 0;
    }
    char mode[160];
    fprintf(f, "models = \"%s\"\nmode = \"%s\"\n", models, mode_words(sw, mode, sizeof mode));
    fputs(plot_script, f);
    fclose(f);
    if (!find_in_path("gnuplot")) {
        snprintf(why, whylen, "gnuplot is not installed (apt-get install gnuplot-nox): "
                              "plots skipped; plot.gp and data/ are there for later");
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(sw->out) < 0)
            _exit(126);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execlp("gnuplot", "gnuplot", "plot.gp", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        snprintf(why, whylen, "gnuplot failed (status %d): see %s/plot.gp", status, sw->out);
        return 0;
    }
    return 1;
}

static FILE *open_out(const sweep *sw, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", sw->out, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "spindle sweep: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static void write_outputs(sweep *sw)
{
    FILE *f;
    if ((f = open_out(sw, "table.txt"))) {
        write_classic(f, sw);
        fclose(f);
    }
    if ((f = open_out(sw, "table.md"))) {
        write_markdown(f, sw);
        fclose(f);
    }
    if ((f = open_out(sw, "results.csv"))) {
        write_csv(f, sw);
        fclose(f);
    }
    if ((f = open_out(sw, "results.jsonl"))) {
        for (int i = 0; i < sw->nmodels; i++) {
            model_run *m = &sw->models[i];
            if (m->not_built)
                write_json_skip(f, m);
            else
                for (int c = 0; c < sw->nconc; c++)
                    write_json_point(f, sw, m, &m->points[c]);
        }
        fclose(f);
    }
    char why[512];
    if (write_plots(sw, why, sizeof why))
        fprintf(stderr, "spindle sweep: plots: %s/rps.svg, %s/p99.svg\n", sw->out, sw->out);
    else
        fprintf(stderr, "spindle sweep: no plots: %s\n", why);
    fprintf(stderr, "spindle sweep: results in %s/ (table.txt, table.md, results.csv, "
                    "results.jsonl)\n", sw->out);
}

/* ---- the sweep -------------------------------------------------------------------------- */

static void on_signal(int sig)
{
    interrupted = 1;
    pid_t g = server_pgid;
    if (g > 0)
        kill(-g, SIGTERM); /* the load then fails fast and the sweep ends */
    (void)sig;
}

/* The measured time per level from the budget, when --duration is not
 * given: what is left of the budget after warm-ups and server starts,
 * shared by every point, within [DURATION_MIN_S, DURATION_MAX_S]. */
static void plan(sweep *sw)
{
    if (sw->warmup_s < 0)
        sw->warmup_s = sw->quick ? WARMUP_QUICK_S : WARMUP_DEFAULT_S;
    sw->total_points = 0;
    for (int i = 0; i < sw->nmodels; i++)
        if (!sw->models[i].not_built)
            sw->total_points += sw->nconc;
    sw->overhead_s = OVERHEAD_GUESS_S;
    if (sw->duration_s || sw->classic || !sw->total_points)
        return;
    double fixed = 0;
    for (int c = 0; c < sw->nconc; c++)
        fixed += sw->warmup_s + WARMUP_PER_CONN_S * sw->concs[c] + OVERHEAD_GUESS_S;
    int nm = sw->total_points / sw->nconc;
    double budget = sw->quick ? BUDGET_QUICK_S : BUDGET_DEFAULT_S;
    double d = (budget / nm - fixed) / sw->nconc;
    d = floor(d * 10) / 10;
    sw->duration_s = d < DURATION_MIN_S ? DURATION_MIN_S : d > DURATION_MAX_S ? DURATION_MAX_S : d;
}

static void print_plain_point(const sweep *sw, const model_run *m, const point *pt)
{
    if (sw->tty)
        fprintf(stderr, "\r\033[K");
    if (!pt->ran) {
        fprintf(stderr, "sweep: %s at %d: failed: %s\n", m->name, pt->conc, pt->note);
        return;
    }
    fprintf(stderr, "sweep: %s at %d: %.1f requests/s, p99 %.2f ms, %" PRIu64 " errors%s%s\n",
            m->name, pt->conc, point_rps(pt), p_us(pt, 99) / 1e3, sp_load_errors(&pt->res),
            pt->note[0] ? "; " : "", pt->note);
}

static int make_out_dir(sweep *sw)
{
    if (!sw->out) {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(sw->outbuf, sizeof sw->outbuf, "sweep-%Y%m%d-%H%M%S", &tm);
        sw->out = sw->outbuf;
    }
    if (mkdir(sw->out, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "spindle sweep: cannot make %s: %s\n", sw->out, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(sw->out, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "spindle sweep: %s is not a folder\n", sw->out);
        return -1;
    }
    return 0;
}

int spindle_sweep(int argc, char **argv)
{
    sweep *sw = calloc(1, sizeof *sw);
    if (!sw) {
        fprintf(stderr, "spindle sweep: out of memory\n");
        return 1;
    }
    int rc = parse_args(argc, argv, sw);
    if (rc) {
        free(sw);
        return rc == 1 ? 0 : rc;
    }
    ssize_t n = readlink("/proc/self/exe", sw->self, sizeof sw->self - 1);
    if (n <= 0) {
        fprintf(stderr, "spindle sweep: cannot find my own executable: %s\n", strerror(errno));
        free(sw);
        return 1;
    }
    sw->self[n] = 0;
    if (make_out_dir(sw) < 0) {
        free(sw);
        return 1;
    }
    for (int i = 0; i < sw->nmodels; i++) {
        sw->models[i].points = calloc((size_t)sw->nconc, sizeof(point));
        if (!sw->models[i].points) {
            fprintf(stderr, "spindle sweep: out of memory\n");
            rc = 1;
            goto out;
        }
    }
    plan(sw);
    choose_cpus(sw);
    sw->tty = isatty(STDERR_FILENO);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char mode[160];
    fprintf(stderr, "spindle sweep: %d models x %d levels (%s)%s; into %s/\n", sw->nmodels,
            sw->nconc, mode_words(sw, mode, sizeof mode), sw->quick ? ", quick" : "", sw->out);
    if (sw->cpu_load >= 0)
        fprintf(stderr, "spindle sweep: server pinned to CPU %d, load to CPU %d\n",
                sw->cpu_server, sw->cpu_load);
    else
        fprintf(stderr, "spindle sweep: one CPU only: server and load share it (not pinned)\n");
    for (int i = 0; i < sw->nmodels; i++)
        if (sw->models[i].not_built)
            fprintf(stderr, "sweep: %s: not built: %s\n", sw->models[i].name,
                    sw->models[i].not_built);

    cpu_set_t saved;
    int have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
    for (int i = 0; i < sw->nmodels && !interrupted; i++) {
        model_run *m = &sw->models[i];
        if (m->not_built)
            continue;
        for (int c = 0; c < sw->nconc && !interrupted; c++) {
            point *pt = &m->points[c];
            pt->conc = sw->concs[c];
            run_point(sw, m, pt);
            if (have_saved)
                sched_setaffinity(0, sizeof saved, &saved);
            if (interrupted && !pt->note[0])
                snprintf(pt->note, sizeof pt->note, "interrupted");
            print_plain_point(sw, m, pt);
            if (sw->json) {
                write_json_point(stdout, sw, m, pt);
                fflush(stdout);
            }
            sw->done_points++;
        }
    }
    if (sw->json) {
        for (int i = 0; i < sw->nmodels; i++)
            if (sw->models[i].not_built)
                write_json_skip(stdout, &sw->models[i]);
    } else {
        write_classic(stdout, sw);
    }
    fflush(stdout);
    write_outputs(sw);
    if (interrupted) {
        fprintf(stderr, "spindle sweep: interrupted: the results are partial\n");
        rc = 130;
    }
out:
    for (int i = 0; i < sw->nmodels; i++)
        free(sw->models[i].points);
    free(sw);
    return rc;
}
