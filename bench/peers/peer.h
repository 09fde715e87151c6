/* What every peer program shares: its one option (--bench NAME), the timing
 * loop that turns a body into a median-with-spread row, and the fork-per-run
 * harness for resident-memory figures.
 *
 * Header-only (static functions) so that each peer stays one source file and
 * links nothing but bench_support and its own peer library; usable from C11
 * and C++17 alike. */
#ifndef SP_BENCH_PEER_H
#define SP_BENCH_PEER_H

#ifdef __cplusplus
extern "C" {
#endif
#include "bench.h"
#ifdef __cplusplus
}
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* About 0.1 s a measured run: long enough that timer resolution and a stray
 * preemption on a shared 2-core machine are noise, short enough that a peer
 * with a few rows and 5 runs each finishes in a few seconds. */
#define PEER_TARGET_NS 1e8
/* The calibration (which is also the warm-up) doubles the operation count
 * until one pass takes at least this long, then scales to PEER_TARGET_NS. */
#define PEER_CALIBRATE_NS 1e7
#define PEER_MIN_OPS 256L
/* A cap that only a body which does nothing would reach. */
#define PEER_MAX_OPS (1L << 40)

/* Performs `ops` operations (ops is even, so a ping-pong body can do ops/2
 * round trips) and returns the elapsed nanoseconds. */
typedef double (*peer_time_fn)(void *arg, long ops);

/* Creates `n` units (fibers, threads), parks them all, and returns the growth
 * of the resident set in bytes between just before the first one was made
 * and all of them being parked; then releases them. On failure it returns -1
 * and writes a one-line reason (no quotes) into why. */
typedef long (*peer_memory_fn)(void *arg, long n, char *why, size_t whylen);

/* Parses the command line: nothing, or `--bench NAME`. Anything else is a
 * usage error: message on stderr and exit status 2, as the driver expects. */
static inline const char *peer_parse_args(int argc, char **argv)
{
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bench") == 0 && i + 1 < argc && !only) {
            only = argv[++i];
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\nusage: %s [--bench NAME]\n",
                    argv[0], argv[i], argv[0]);
            exit(2);
        }
    }
    return only;
}

/* Whether this run wants rows of `bench` (no filter means all). */
static inline int peer_wants(const char *only, const char *bench)
{
    return only == NULL || strcmp(only, bench) == 0;
}

static inline void peer_row_init(bench_row *row, const char *bench,
                                 const char *impl, const char *unit, long n)
{
    memset(row, 0, sizeof *row);
    snprintf(row->bench, sizeof row->bench, "%s", bench);
    snprintf(row->impl, sizeof row->impl, "%s", impl);
    snprintf(row->unit, sizeof row->unit, "%s", unit);
    row->n = n;
}

/* Times `fn` and prints one ROW in ns/op: calibration passes (doubling the
 * count from PEER_MIN_OPS) serve as the warm-up, then bench_runs(5) passes of
 * about PEER_TARGET_NS each give the median, min and max. */
static inline void peer_time(const char *bench, const char *impl,
                             peer_time_fn fn, void *arg)
{
    double samples[BENCH_MAX_RUNS];
    bench_row row;
    long ops = PEER_MIN_OPS;
    double t;

    while ((t = fn(arg, ops)) < PEER_CALIBRATE_NS && ops < PEER_MAX_OPS)
        ops *= 2;
    double scaled = (double)ops * PEER_TARGET_NS / (t > 1 ? t : 1);
    ops = scaled < (double)PEER_MAX_OPS ? (long)scaled & ~1L : PEER_MAX_OPS;
    if (ops < 2)
        ops = 2;

    int runs = bench_runs(5);
    for (int i = 0; i < runs; i++)
        samples[i] = fn(arg, ops) / (double)ops;
    peer_row_init(&row, bench, impl, "ns/op", 0);
    bench_summarize(&row, samples, runs);
    bench_row_write(stdout, &row);
}

/* Memory runs in flight at once. Each run is a fresh process (below), and a
 * figure in pages does not move when two share the machine, while the page
 * faults of 100,000 fresh stacks are most of a peer's time: two at a time
 * halves it on a 2-core machine and changes no figure. */
#define PEER_MEMORY_JOBS 2

/* A memory run in flight: the child and the read end of its pipe. */
typedef struct peer_child {
    pid_t pid;
    int fd;
} peer_child;

/* Starts one memory run in a child process. A fresh process per run is what
 * makes the runs independent: in one process the second run would reuse the
 * stacks and heap the first one freed, and its RSS growth would read near
 * zero. The child writes "<bytes>\n" or "-1 <reason>\n" on a pipe.
 * Returns 0, or -1 with why filled in. */
static inline int peer_memory_start(peer_child *c, peer_memory_fn fn, void *arg,
                                    long n, char *why, size_t whylen)
{
    int fds[2];
    if (pipe(fds) < 0) {
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL); /* so the child cannot write our buffered rows twice */
    c->pid = fork();
    if (c->pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (c->pid == 0) {
        char line[256];
        close(fds[0]);
        long grown = fn(arg, n, why, whylen);
        if (grown >= 0)
            snprintf(line, sizeof line, "%ld\n", grown);
        else
            snprintf(line, sizeof line, "-1 %s\n", why);
        ssize_t w = write(fds[1], line, strlen(line));
        _exit(w > 0 ? 0 : 1);
    }
    close(fds[1]);
    c->fd = fds[0];
    return 0;
}

/* Waits for a run started by peer_memory_start. Returns the bytes of RSS
 * growth, or -1 with why filled in. */
static inline long peer_memory_finish(peer_child *c, char *why, size_t whylen)
{
    char buf[256];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 &&
           ((r = read(c->fd, buf + len, sizeof buf - 1 - len)) > 0 ||
            (r < 0 && errno == EINTR)))
        len += r > 0 ? (size_t)r : 0;
    buf[len] = 0;
    close(c->fd);
    int status;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status)) {
        snprintf(why, whylen, "child killed by signal %d (%s)",
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
        return -1;
    }
    char *end;
    long grown = strtol(buf, &end, 10);
    if (end == buf || grown < 0) {
        buf[strcspn(buf, "\n")] = 0;
        snprintf(why, whylen, "%s", end != buf && *end == ' ' ? end + 1
                                   : "child exited without a figure");
        return -1;
    }
    return grown;
}

/* Measures bytes per unit with `n` alive and parked: bench_runs(5) runs, each
 * in its own process, PEER_MEMORY_JOBS at a time, and prints a ROW (unit
 * bytes/co) or, when a run fails, a SKIP with the reason. The warm-up
 * (library initialisation, the first stack) is the body's business, inside
 * each child, before its baseline. */
static inline void peer_memory(const char *bench, const char *impl,
                               peer_memory_fn fn, void *arg, long n)
{
    double samples[BENCH_MAX_RUNS];
    char why[200] = "";
    peer_child kids[PEER_MEMORY_JOBS];
    bench_row row;
    int failed = 0;

    int runs = bench_runs(5);
    for (int i = 0; i < runs; i += PEER_MEMORY_JOBS) {
        int started = 0;
        for (int j = 0; j < PEER_MEMORY_JOBS && i + j < runs && !failed; j++) {
            if (peer_memory_start(&kids[j], fn, arg, n, why, sizeof why) < 0)
                failed = 1;
            else
                started++;
        }
        for (int j = 0; j < started; j++) {
            long grown = peer_memory_finish(&kids[j], why, sizeof why);
            if (grown < 0)
                failed = 1;
            else
                samples[i + j] = (double)grown / (double)n;
        }
        if (failed) {
            bench_skip_write(stdout, bench, impl, why);
            return;
        }
    }
    peer_row_init(&row, bench, impl, "bytes/co", n);
    bench_summarize(&row, samples, runs);
    bench_row_write(stdout, &row);
}

#endif
