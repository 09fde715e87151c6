/* The echo benches' driver (echo.h): starts a server pinned to one CPU,
 * waits for its READY line, measures it with the load client from the
 * calling thread pinned to another CPU, prints one row, stops the server.
 * Every way the server can fail (not found, not starting, dying, dropping
 * connections) becomes a SKIP line, and the server is always reaped. */
#define _GNU_SOURCE
#include "echo.h"
#include "bench.h"
#include "peers.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A server that has not said READY by then is not going to. */
#define ECHO_READY_TIMEOUT_S 5.0
/* How long SIGTERM gets before SIGKILL. */
#define ECHO_STOP_TIMEOUT_S 2.0
#define ECHO_STOP_POLL_NS 5000000L
/* How long a server that broke connections gets to show it is dying. */
#define ECHO_DYING_S 0.5
/* 1 MiB, the default fs.pipe-max-size: a log line per connection of
 * echo_1000 fits many times over. */
#define ECHO_PIPE_SIZE (1 << 20)
#define ECHO_WHY_MAX 256
#define ECHO_LINE_MAX 512

/* A server being measured. */
typedef struct echo_server {
    pid_t pid;        /* -1 once reaped */
    int fd;           /* read end of its stdout */
    int port;
    const char *name; /* its program's base name, for messages */
    int status;       /* its wait status, once reaped */
} echo_server;

/* What the child reports on its error pipe when it cannot exec. */
typedef struct echo_child_error {
    int stage; /* ECHO_STAGE_* */
    int err;   /* errno */
} echo_child_error;

enum { ECHO_STAGE_PIN = 1, ECHO_STAGE_EXEC };

static double echo_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int echo_conns(const char *bench)
{
    if (bench && strcmp(bench, "echo_rtt") == 0)
        return 1;
    if (bench && strcmp(bench, "echo_1000") == 0)
        return 1000;
    return -1;
}

/* The first two CPUs the calling thread may run on: the server gets the
 * first, the client the second. Returns 0, or -1 when there are fewer than
 * two (then nothing is pinned). `saved` gets the thread's current set. */
static int echo_cpus(cpu_set_t *saved, int *server_cpu, int *client_cpu)
{
    *server_cpu = *client_cpu = -1;
    if (sched_getaffinity(0, sizeof *saved, saved) < 0)
        return -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && *client_cpu < 0; cpu++) {
        if (!CPU_ISSET(cpu, saved))
            continue;
        if (*server_cpu < 0)
            *server_cpu = cpu;
        else
            *client_cpu = cpu;
    }
    return *client_cpu < 0 ? -1 : 0;
}

static int echo_pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

/* A port no one listens on now: the kernel picks it for a socket bound to
 * port 0, which is then closed before it ever listened (so it leaves no
 * TIME_WAIT behind). Another program could take it before the server does;
 * the server then fails to bind and the row is a SKIP that says so. */
static int echo_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int ret = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        ret = -errno;
    close(fd);
    return ret < 0 ? ret : ntohs(a.sin_port);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void echo_child(char *const argv[], int out_fd, int err_fd, int cpu, pid_t parent)
{
    echo_child_error e;
    sigset_t none;

    /* Our caller may block or ignore signals; the server must see SIGTERM
     * (and SIGPIPE, which exec keeps ignored) as a fresh program does. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    /* If the driver is killed mid-run, the server must not outlive it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    if (cpu >= 0 && echo_pin_self(cpu) < 0) {
        e = (echo_child_error){ECHO_STAGE_PIN, errno};
        goto fail;
    }
    if (out_fd == STDOUT_FILENO)
        fcntl(out_fd, F_SETFD, 0); /* dup2 onto itself keeps O_CLOEXEC */
    else
        dup2(out_fd, STDOUT_FILENO);
    execvp(argv[0], argv);
    e = (echo_child_error){ECHO_STAGE_EXEC, errno};
fail:
    if (write(err_fd, &e, sizeof e) < 0)
        _exit(126);
    _exit(127);
}

/* Starts argv with `--port port` appended and its stdout on a pipe. Returns
 * 0, or -1 with why filled in (the child, if any, is reaped). */
static int echo_spawn(echo_server *s, char *const server_argv[], int cpu,
                      char *why, size_t len)
{
    char port_arg[16];
    int argc = 0;
    while (server_argv[argc])
        argc++;
    char **argv = malloc(((size_t)argc + 3) * sizeof *argv);
    if (!argv) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    memcpy(argv, server_argv, (size_t)argc * sizeof *argv);
    snprintf(port_arg, sizeof port_arg, "%d", s->port);
    argv[argc] = "--port";
    argv[argc + 1] = port_arg;
    argv[argc + 2] = NULL;

    int out[2], err[2], saved_errno;
    if (pipe2(out, O_CLOEXEC) < 0)
        goto fail_out;
    /* Closed by a successful exec: reading EOF from it means the exec
     * happened; an echo_child_error means it did not. */
    if (pipe2(err, O_CLOEXEC) < 0)
        goto fail_err;
    pid_t parent = getpid();
    s->pid = fork();
    if (s->pid < 0)
        goto fail_fork;
    if (s->pid == 0)
        echo_child(argv, out[1], err[1], cpu, parent);
    close(out[1]);
    close(err[1]);
    free(argv);

    echo_child_error e;
    ssize_t got;
    while ((got = read(err[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(err[0]);
    if (got == (ssize_t)sizeof e) {
        snprintf(why, len, "%s could not be %s: %s", s->name,
                 e.stage == ECHO_STAGE_PIN ? "pinned" : "run", strerror(e.err));
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        s->pid = -1;
        close(out[0]);
        return -1;
    }
    /* Non-blocking from the start: a server that exits leaving a child
     * with our pipe as its stdout must not block the final drain. */
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    /* It is drained only between runs: room for a server that logs a line
     * per connection not to block on it mid-run (best effort: the kernel
     * may cap it lower, fs.pipe-max-size). */
    fcntl(out[0], F_SETPIPE_SZ, ECHO_PIPE_SIZE);
    s->fd = out[0];
    return 0;

fail_fork:
    saved_errno = errno;
    close(err[0]);
    close(err[1]);
    errno = saved_errno;
fail_err:
    saved_errno = errno;
    close(out[0]);
    close(out[1]);
    errno = saved_errno;
fail_out:
    snprintf(why, len, "cannot start %s: %s", s->name, strerror(errno));
    free(argv);
    s->pid = -1;
    return -1;
}

/* Why the server ended, from its wait status. */
static void echo_exit_reason(const echo_server *s, const char *when, char *why, size_t len)
{
    if (WIFSIGNALED(s->status))
        snprintf(why, len, "%s killed by signal %d (%s) %s", s->name,
                 WTERMSIG(s->status), strsignal(WTERMSIG(s->status)), when);
    else
        snprintf(why, len, "%s exited with status %d %s", s->name,
                 WEXITSTATUS(s->status), when);
}

/* Whether the server still runs; reaps it (and says why it ended, `when`)
 * if not. */
static int echo_alive(echo_server *s, const char *when, char *why, size_t len)
{
    if (s->pid < 0)
        return 0;
    pid_t r = waitpid(s->pid, &s->status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return 1;
    if (r < 0) /* ECHILD: reaped behind our back (SIGCHLD ignored) */
        snprintf(why, len, "%s ended %s", s->name, when);
    else
        echo_exit_reason(s, when, why, len);
    s->pid = -1;
    return 0;
}

/* Passes what the server wrote since the last call on to our stderr, so it
 * is seen, and so a chatty server never blocks on a full pipe. */
static void echo_drain(echo_server *s)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(s->fd, buf, sizeof buf)) > 0)
        if (write(STDERR_FILENO, buf, (size_t)n) < 0)
            break;
}

/* Handles one line of the server's output before READY. Returns 1 for the
 * READY line (s->port updated when it names one). */
static int echo_ready_line(echo_server *s, const char *line)
{
    int port;
    if (strncmp(line, "READY", 5) == 0 && (line[5] == 0 || line[5] == ' ')) {
        if (sscanf(line + 5, "%d", &port) == 1 && port > 0 && port <= 65535)
            s->port = port;
        return 1;
    }
    if (*line)
        fprintf(stderr, "%s: %s\n", s->name, line);
    return 0;
}

/* Reads the server's stdout until its READY line, for at most
 * ECHO_READY_TIMEOUT_S. Returns 0, or -1 with why filled in. */
static int echo_wait_ready(echo_server *s, char *why, size_t len)
{
    char buf[ECHO_LINE_MAX];
    size_t have = 0;
    double deadline = echo_now_s() + ECHO_READY_TIMEOUT_S;
    for (;;) {
        double left = deadline - echo_now_s();
        if (left <= 0) {
            snprintf(why, len, "%s printed no READY within %.0f s", s->name,
                     ECHO_READY_TIMEOUT_S);
            return -1;
        }
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR) {
            snprintf(why, len, "poll on %s's output: %s", s->name, strerror(errno));
            return -1;
        }
        if (n <= 0)
            continue;
        ssize_t got = read(s->fd, buf + have, sizeof buf - 1 - have);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) {
            /* It closed its stdout: it has exited, or soon will. */
            for (int i = 0; i < 100 && echo_alive(s, "before READY", why, len); i++)
                nanosleep(&(struct timespec){0, 10000000L}, NULL);
            if (s->pid >= 0)
                snprintf(why, len, "%s closed its output before READY", s->name);
            return -1;
        }
        have += (size_t)got;
        buf[have] = 0;
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = 0;
            if (echo_ready_line(s, start)) {
                /* What follows READY is ordinary output: pass it on. */
                fputs(nl + 1, stderr);
                return 0;
            }
            start = nl + 1;
        }
        have = strlen(start);
        memmove(buf, start, have + 1);
        if (have == sizeof buf - 1) /* a line too long to be READY */
            have = 0;
    }
}

/* SIGTERM, then SIGKILL if it is still there ECHO_STOP_TIMEOUT_S later;
 * always reaps it. A server that had to be killed, or that exits with an
 * error, is reported on stderr: its figures stand, but it is a bug. */
static void echo_stop(echo_server *s)
{
    char why[ECHO_WHY_MAX];
    if (s->pid >= 0) {
        kill(s->pid, SIGTERM);
        double deadline = echo_now_s() + ECHO_STOP_TIMEOUT_S;
        while (echo_alive(s, "after SIGTERM", why, sizeof why) && echo_now_s() < deadline)
            nanosleep(&(struct timespec){0, ECHO_STOP_POLL_NS}, NULL);
        if (s->pid >= 0) {
            kill(s->pid, SIGKILL);
            while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
                ;
            s->pid = -1;
            fprintf(stderr, "%s: still running %.0f s after SIGTERM; killed\n",
                    s->name, ECHO_STOP_TIMEOUT_S);
        } else if (WIFEXITED(s->status) ? WEXITSTATUS(s->status) != 0
                                         : WTERMSIG(s->status) != SIGTERM) {
            /* Dying of the SIGTERM itself is a plain program's clean stop. */
            fprintf(stderr, "%s\n", why);
        }
    }
    if (s->fd >= 0) {
        echo_drain(s);
        close(s->fd);
        s->fd = -1;
    }
}

/* Whether the server still runs after a client run. When the run saw
 * failures, it gets ECHO_DYING_S to turn into a zombie first: a server that
 * is killed resets its connections while it exits, before waitpid can see
 * it, and its death is the better reason for the SKIP. */
static int echo_alive_after(echo_server *s, int failures, const char *when,
                               char *why, size_t len)
{
    double deadline = echo_now_s() + (failures ? ECHO_DYING_S : 0);
    for (;;) {
        if (!echo_alive(s, when, why, len))
            return 0;
        if (echo_now_s() >= deadline)
            return 1;
        nanosleep(&(struct timespec){0, ECHO_STOP_POLL_NS}, NULL);
    }
}

static const char *echo_error_name(int err)
{
    switch (err) {
    case EPIPE: return "closed by the server";
    case EBADMSG: return "wrong bytes echoed";
    case ETIMEDOUT: return "never connected";
    default: return strerror(err);
    }
}

/* The client runs, the calling thread pinned to client_cpu (when >= 0).
 * Returns 0 with samples filled, or -1 with why filled in. */
static int echo_measure(echo_server *s, int conns, int runs, int client_cpu,
                        double *samples, char *why, size_t len)
{
    char when[32];
    if (client_cpu >= 0 && echo_pin_self(client_cpu) < 0) {
        snprintf(why, len, "cannot pin the client to CPU %d: %s", client_cpu,
                 strerror(errno));
        return -1;
    }
    for (int i = 0; i < runs; i++) {
        bench_echo_result res;
        snprintf(when, sizeof when, "during run %d", i + 1);
        echo_drain(s);
        if (!echo_alive(s, when, why, len))
            return -1;
        int ret = bench_echo_client_run("127.0.0.1", s->port, conns, BENCH_ECHO_MSG_SIZE,
                                        BENCH_ECHO_RUN_S, &res);
        if (!echo_alive_after(s, ret < 0 || res.errors > 0, when, why, len))
            return -1;
        if (ret < 0) {
            snprintf(why, len, "client failed in run %d: %s", i + 1, echo_error_name(-ret));
            return -1;
        }
        if (res.errors > 0) {
            snprintf(why, len, "%ld of %d connections failed in run %d (first: %s)",
                     res.errors, conns, i + 1, echo_error_name(res.first_error));
            return -1;
        }
        if (res.echoes == 0) {
            snprintf(why, len, "no message echoed in run %d", i + 1);
            return -1;
        }
        samples[i] = res.msgs_per_sec;
    }
    return 0;
}

int bench_echo_run(const char *bench, const char *impl, char *const server_argv[],
                   int runs, int json, FILE *out)
{
    int conns = echo_conns(bench);
    if (conns < 0 || !impl || !server_argv || !server_argv[0])
        return -EINVAL;
    runs = runs < 1 ? 1 : runs > BENCH_MAX_RUNS ? BENCH_MAX_RUNS : runs;

    char why[ECHO_WHY_MAX] = "";
    double samples[BENCH_MAX_RUNS];
    const char *slash = strrchr(server_argv[0], '/');
    echo_server s = {.pid = -1, .fd = -1, .name = slash ? slash + 1 : server_argv[0]};
    cpu_set_t saved;
    int server_cpu, client_cpu, pinned, ok = 0;

    /* Before the fork, so that the server inherits it too. */
    long limit = bench_echo_raise_nofile();
    if (limit >= 0 && limit < conns + 64L) {
        snprintf(why, sizeof why, "descriptor limit %ld too low for %d connections",
                 limit, conns);
        goto done;
    }
    pinned = echo_cpus(&saved, &server_cpu, &client_cpu) == 0;
    s.port = echo_free_port();
    if (s.port < 0) {
        snprintf(why, sizeof why, "no free port on 127.0.0.1: %s", strerror(-s.port));
        goto done;
    }
    fflush(out); /* our rows before anything the server writes */
    if (echo_spawn(&s, server_argv, pinned ? server_cpu : -1, why, sizeof why) < 0)
        goto done;
    if (echo_wait_ready(&s, why, sizeof why) == 0) {
        ok = echo_measure(&s, conns, runs, pinned ? client_cpu : -1, samples, why,
                          sizeof why) == 0;
        if (pinned)
            sched_setaffinity(0, sizeof saved, &saved);
    }
    echo_stop(&s);
done:
    if (!ok) {
        bench_peer_clean(why);
        bench_print_skip(out, bench, impl, why, json);
        return 0;
    }
    bench_row row = {0};
    snprintf(row.bench, sizeof row.bench, "%s", bench);
    snprintf(row.impl, sizeof row.impl, "%s", impl);
    snprintf(row.unit, sizeof row.unit, "msg/s");
    bench_summarize(&row, samples, runs);
    bench_print(out, &row, json);
    return 1;
}

/* The peer servers; their rows say which bench each serves. */
static const bench_peer echo_peer_list[] = {
    {"peer_echo_libuv", "libuv1-dev",
     {{"echo_rtt", "libuv/loop"}, {"echo_1000", "libuv/loop"}}},
    {"peer_echo_libevent", "libevent-dev",
     {{"echo_rtt", "libevent/loop"}, {"echo_1000", "libevent/loop"}}},
    {NULL, NULL, {{NULL, NULL}}},
};

static int echo_peers_bench(const char *bench, int runs, int json, FILE *out)
{
    int printed = 0;
    for (const bench_peer *p = echo_peer_list; p->program; p++) {
        for (int i = 0; i < BENCH_PEER_MAX_ROWS && p->rows[i].bench; i++) {
            if (strcmp(p->rows[i].bench, bench) != 0)
                continue;
            char path[4096], why[ECHO_WHY_MAX];
            if (!bench_peer_find(p, path, sizeof path)) {
                bench_peer_why_missing(p, why, sizeof why);
                bench_print_skip(out, bench, p->rows[i].impl, why, json);
                continue;
            }
            char *argv[] = {path, NULL};
            printed += bench_echo_run(bench, p->rows[i].impl, argv, runs, json, out) > 0;
        }
    }
    return printed;
}

int bench_echo_peers(const char *bench, int runs, int json, FILE *out)
{
    if (bench)
        return echo_conns(bench) < 0 ? 0 : echo_peers_bench(bench, runs, json, out);
    return echo_peers_bench("echo_rtt", runs, json, out) +
           echo_peers_bench("echo_1000", runs, json, out);
}

void bench_echo_note(FILE *out, int json)
{
    cpu_set_t saved;
    int server_cpu, client_cpu;
    if (json)
        return;
    if (echo_cpus(&saved, &server_cpu, &client_cpu) == 0)
        fprintf(out, "echo: server pinned to CPU %d, client to CPU %d;", server_cpu,
                client_cpu);
    else
        fprintf(out, "echo: fewer than 2 CPUs, nothing pinned;");
    fprintf(out, " %d-byte messages on 127.0.0.1; %.1f s warm-up + %.1f s a run;"
                 " a row is skipped if any connection fails\n",
            BENCH_ECHO_MSG_SIZE, BENCH_ECHO_WARMUP_S, BENCH_ECHO_RUN_S);
    fflush(out);
}
