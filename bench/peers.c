/* The peer driver (peers.h): finds each peer program, runs it with its stdout
 * on a pipe, turns its ROW/SKIP lines into bench_print output, and turns
 * every way a peer can fail into a SKIP line instead of a failed run. */
#define _GNU_SOURCE
#include "peers.h"
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef SP_PEER_BUILD_DIR
#define SP_PEER_BUILD_DIR NULL
#endif
#ifndef SP_PEER_INSTALL_DIR
#define SP_PEER_INSTALL_DIR NULL
#endif

const bench_peer bench_peer_list[] = {
    {"peer_boost_context", "libboost-context-dev",
     {{"switch", "boost/fcontext"}, {"switch", "boost/fiber"}}},
    {"peer_st", "libst-dev",
     {{"switch", "st/cond"}, {"spawn", "st/thread"}, {"idle_memory", "st/thread"}}},
    {"peer_swapcontext", "", {{"switch", "glibc/swapcontext"}}},
    {"peer_boost_fiber", "libboost-fiber-dev",
     {{"spawn", "boost/fiber"}, {"idle_memory", "boost/fiber"}}},
    {"peer_pthread", "", {{"spawn", "pthread/create"}}},
    {"peer_go", "golang-go",
     {{"chan_pingpong", "go/1p"}, {"chan_pingpong", "go/2p"}, {"skynet", "go/1p"},
      {"skynet", "go/2p"}}},
    {NULL, NULL, {{NULL, NULL}}},
};
const int bench_peer_count = sizeof bench_peer_list / sizeof bench_peer_list[0] - 1;

/* A hung peer must not hang `spindle micro`: each gets this long, plus a
 * share per run, since SPINDLE_BENCH_RUNS scales its work (a peer takes
 * well under 2 s a run here; the slack is for slower, busier machines). */
#define PEER_LIMIT_BASE_S 30
#define PEER_LIMIT_PER_RUN_S 12

#define PEER_LINE_MAX 512

/* The folders searched, in order; entries may be NULL. */
static void peer_dirs(const char *dirs[3])
{
    const char *env = getenv("SPINDLE_PEER_DIR");
    dirs[0] = env && *env ? env : NULL;
    dirs[1] = SP_PEER_BUILD_DIR;
    dirs[2] = SP_PEER_INSTALL_DIR;
}

const char *bench_peer_find(const bench_peer *p, char *path, size_t len)
{
    const char *dirs[3];
    peer_dirs(dirs);
    for (int i = 0; i < 3; i++) {
        if (!dirs[i])
            continue;
        int n = snprintf(path, len, "%s/%s", dirs[i], p->program);
        if (n > 0 && (size_t)n < len && access(path, X_OK) == 0)
            return path;
    }
    return NULL;
}

/* Why p's program is missing: the reason the build wrote into the marker
 * peer_<name>.skip (bench/peers/CMakeLists.txt) when it did not build it, or
 * else a guess that names the package. */
static void peer_missing_reason(const bench_peer *p, char *why, size_t len)
{
    const char *dirs[3];
    char path[4096];
    peer_dirs(dirs);
    for (int i = 0; i < 3; i++) {
        if (!dirs[i])
            continue;
        snprintf(path, sizeof path, "%s/%s.skip", dirs[i], p->program);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char *got = fgets(why, (int)len, f);
        fclose(f);
        if (got) {
            why[strcspn(why, "\n")] = 0;
            return;
        }
    }
    if (*p->package)
        snprintf(why, len, "%s not found (needs %s)", p->program, p->package);
    else
        snprintf(why, len, "%s not found (not built)", p->program);
}

/* Reasons land inside a JSON string that bench_print_skip does not escape:
 * keep them printable and free of quotes and backslashes. */
static void peer_clean(char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            *s = '\'';
}

void bench_peer_clean(char *s)
{
    peer_clean(s);
}

void bench_peer_why_missing(const bench_peer *p, char *why, size_t len)
{
    peer_missing_reason(p, why, len);
    peer_clean(why);
}

static int peer_has_bench(const bench_peer *p, const char *bench)
{
    for (int i = 0; i < BENCH_PEER_MAX_ROWS && p->rows[i].bench; i++)
        if (!bench || strcmp(p->rows[i].bench, bench) == 0)
            return 1;
    return 0;
}

/* One peer being run: what it has printed so far. */
typedef struct peer_run {
    const bench_peer *peer;
    const char *only;
    int json;
    FILE *out;
    int printed;                   /* ROW lines printed */
    int seen[BENCH_PEER_MAX_ROWS]; /* expected rows it has answered */
} peer_run;

static void peer_mark_seen(peer_run *r, const char *bench, const char *impl)
{
    const bench_peer *p = r->peer;
    for (int i = 0; i < BENCH_PEER_MAX_ROWS && p->rows[i].bench; i++)
        if (strcmp(p->rows[i].bench, bench) == 0 && strcmp(p->rows[i].impl, impl) == 0)
            r->seen[i] = 1;
}

/* Handles one line of the peer's stdout. Anything that is neither ROW nor
 * SKIP is passed to stderr, so a peer's stray output is seen, not lost. */
static void peer_line(peer_run *r, const char *line)
{
    bench_row row;
    char why[PEER_LINE_MAX];
    int kind = bench_row_parse(line, &row, why, sizeof why);
    if (kind == 0) {
        if (*line)
            fprintf(stderr, "%s: %s\n", r->peer->program, line);
        return;
    }
    if (r->only && strcmp(row.bench, r->only) != 0)
        return;
    peer_mark_seen(r, row.bench, row.impl);
    if (kind == 1) {
        bench_print(r->out, &row, r->json);
        r->printed++;
    } else {
        peer_clean(why);
        bench_print_skip(r->out, row.bench, row.impl, why, r->json);
    }
}

/* SKIP lines for the expected rows (within the filter) not yet answered.
 * Returns how many it printed. */
static int peer_skip_rest(peer_run *r, const char *why)
{
    const bench_peer *p = r->peer;
    int skipped = 0;
    for (int i = 0; i < BENCH_PEER_MAX_ROWS && p->rows[i].bench; i++) {
        if (r->seen[i] || (r->only && strcmp(p->rows[i].bench, r->only) != 0))
            continue;
        bench_print_skip(r->out, p->rows[i].bench, p->rows[i].impl, why, r->json);
        r->seen[i] = 1;
        skipped++;
    }
    return skipped;
}

static double peer_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads the peer's stdout line by line until EOF or the deadline.
 * Returns 0 at EOF, -1 when the deadline passed first. */
static int peer_read(peer_run *r, int fd, double deadline)
{
    char buf[PEER_LINE_MAX];
    size_t len = 0;
    for (;;) {
        double left = deadline - peer_now_s();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR)
            return -1; /* cannot wait on it: stop it as if it had hung */
        if (n <= 0)
            continue; /* EINTR or timed out: the deadline check decides */
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (len) { /* a last line without its newline */
                buf[len] = 0;
                peer_line(r, buf);
            }
            return 0;
        }
        len += (size_t)got;
        buf[len] = 0;
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = 0;
            peer_line(r, start);
            start = nl + 1;
        }
        len = strlen(start);
        memmove(buf, start, len + 1);
        if (len == sizeof buf - 1) { /* a line too long to be ours: drop it */
            fprintf(stderr, "%s: overlong output line dropped\n", r->peer->program);
            len = 0;
        }
    }
}

/* Starts `path [--bench only]` with its stdout on a pipe; stdin and stderr
 * are ours. Returns the pid, or -1 with errno set. */
static pid_t peer_spawn(const char *path, const char *only, int *outfd)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    char *argv[] = {(char *)path, only ? "--bench" : NULL, (char *)only, NULL};
    pid_t pid;
    int err = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (err) {
        close(fds[0]);
        errno = err;
        return -1;
    }
    *outfd = fds[0];
    return pid;
}

/* Runs one peer; the reason for any rows it did not print goes in why.
 * Returns 0 when it ran and exited with status 0. */
static int peer_run_one(peer_run *r, const char *path, char *why, size_t len)
{
    int fd;
    fflush(r->out);
    pid_t pid = peer_spawn(path, r->only, &fd);
    if (pid < 0) {
        snprintf(why, len, "%s could not be run: %s", r->peer->program, strerror(errno));
        return -1;
    }
    int limit = PEER_LIMIT_BASE_S + PEER_LIMIT_PER_RUN_S * bench_runs(5);
    int timed_out = peer_read(r, fd, peer_now_s() + limit) < 0;
    close(fd);
    if (timed_out)
        kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(why, len, "%s: waitpid: %s", r->peer->program, strerror(errno));
            return -1;
        }
    }
    if (timed_out)
        snprintf(why, len, "%s killed after its %d s time limit", r->peer->program, limit);
    else if (WIFSIGNALED(status))
        snprintf(why, len, "%s killed by signal %d (%s)", r->peer->program,
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) != 0)
        snprintf(why, len, "%s exited with status %d", r->peer->program,
                 WEXITSTATUS(status));
    else {
        snprintf(why, len, "%s printed no figure for it", r->peer->program);
        return 0;
    }
    return -1;
}

/* Runs every peer that has rows of `bench`, with `--bench bench`. */
static int peer_run_bench(const char *bench, int json, FILE *out)
{
    int printed = 0;
    for (const bench_peer *p = bench_peer_list; p->program; p++) {
        if (!peer_has_bench(p, bench))
            continue;
        peer_run r = {.peer = p, .only = bench, .json = json, .out = out};
        char path[4096], why[PEER_LINE_MAX];
        int failed = 0;
        if (!bench_peer_find(p, path, sizeof path))
            peer_missing_reason(p, why, sizeof why);
        else
            failed = peer_run_one(&r, path, why, sizeof why) < 0;
        peer_clean(why);
        /* A peer that failed after printing all its rows still says so. */
        if (peer_skip_rest(&r, why) == 0 && failed)
            fprintf(stderr, "%s\n", why);
        printed += r.printed;
    }
    return printed;
}

/* Whether `bench` is named by a row before row `row` of peer `p`, in list
 * order: so each bench is run once, where it first appears. */
static int peer_bench_seen_before(const bench_peer *p, int row, const char *bench)
{
    for (const bench_peer *q = bench_peer_list; q <= p; q++)
        for (int i = 0; i < (q == p ? row : BENCH_PEER_MAX_ROWS) && q->rows[i].bench; i++)
            if (strcmp(q->rows[i].bench, bench) == 0)
                return 1;
    return 0;
}

/* Without a filter the peers are still run one bench at a time (a program
 * several times, each doing only that bench's work), so that the rows come
 * out grouped by bench, as in spindle's own table. */
int bench_peers_run(const char *only_bench, int json, FILE *out)
{
    if (only_bench)
        return peer_run_bench(only_bench, json, out);
    int printed = 0;
    for (const bench_peer *p = bench_peer_list; p->program; p++)
        for (int i = 0; i < BENCH_PEER_MAX_ROWS && p->rows[i].bench; i++)
            if (!peer_bench_seen_before(p, i, p->rows[i].bench))
                printed += peer_run_bench(p->rows[i].bench, json, out);
    return printed;
}
