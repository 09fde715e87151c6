/* spindle micro: the runtime's micro-benchmarks (switch, spawn,
 * idle_memory), with the peers of bench/peers measured in the same run. */
#define _GNU_SOURCE
#include "micro.h"

#include <errno.h>
#include <fenv.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spindle.h>

#include "bench.h"
#include "core/internal.h"
#include "echo.h"
#include "peers.h"

/* Each variant needs its own scheduler configuration, and a thread's
 * scheduler is configured once: every measurement runs on a new thread. */
typedef struct variant {
    const char *impl;
    sp_config cfg;
    double (*run)(const struct variant *v, long iters); /* ns per op */
    sp_stack_kind stack;
    int raise; /* switch: one coroutine raises an FP exception flag */
} variant;

typedef struct job {
    const variant *v;
    long iters;
    double result;
} job;

static void *job_thread(void *arg)
{
    job *j = arg;
    if (sp_thread_init(&j->v->cfg) != 0)
        j->result = -1;
    else
        j->result = j->v->run(j->v, j->iters);
    return NULL;
}

static double run_on_thread(const variant *v, long iters)
{
    job j = {.v = v, .iters = iters};
    pthread_t t;
    if (pthread_create(&t, NULL, job_thread, &j) != 0)
        return -1;
    pthread_join(t, NULL);
    return j.result;
}

/* ---- switch ---- */

static long switch_iters;

static void *yielder(void *arg)
{
    if (arg)
        bench_raise_inexact(); /* spindle/asm-fpflags: its partner has not */
    for (long i = 0; i < switch_iters; i++)
        sp_yield();
    return NULL;
}

static double bench_yield(const variant *v, long iters)
{
    switch_iters = iters;
    feclearexcept(FE_ALL_EXCEPT);
    sp_co *a = sp_spawn(yielder, v->raise ? (void *)1 : NULL, NULL);
    sp_co *b = sp_spawn(yielder, NULL, NULL);
    /* The root parks in join: only a and b take turns. */
    double t0 = bench_now_ns();
    sp_join(a, NULL);
    sp_join(b, NULL);
    return (bench_now_ns() - t0) / (2.0 * (double)iters);
}

/* spindle/jump: the bare switch, with the FP words kept unless the variant
 * shares them (micro_jump.c). */
static double bench_jump(const variant *v, long iters)
{
    return micro_jump(iters, !v->cfg.fpenv_shared);
}

static sp_co *peer_co[2];
static void *yield_to_loop(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (long i = 0; i < switch_iters; i++)
        if (sp_yield_to(peer_co[!me]) != 0)
            break;
    return NULL;
}

static double bench_yield_to(const variant *v, long iters)
{
    switch_iters = iters;
    peer_co[0] = sp_spawn(yield_to_loop, (void *)0, NULL);
    peer_co[1] = sp_spawn(yield_to_loop, (void *)1, NULL);
    double t0 = bench_now_ns();
    sp_join(peer_co[0], NULL);
    double t = bench_now_ns() - t0;
    sp_join(peer_co[1], NULL);
    return t / (2.0 * (double)iters);
}

/* ---- spawn ---- */

static void *noop(void *arg) { return arg; }

static double bench_spawn(const variant *v, long iters)
{
    sp_co_attr at = {.stack = v->stack};
    double t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        sp_co *co = sp_spawn(noop, NULL, &at);
        if (!co || sp_join(co, NULL) != 0)
            return -1;
    }
    return (bench_now_ns() - t0) / (double)iters;
}

/* ---- idle memory ---- */

static void *idler(void *arg)
{
    sp_suspend();
    return NULL;
}

/* Runs in a forked child so that the RSS it measures is its own.  Returns
 * bytes per coroutine, or -1. */
static double bench_idle(const variant *v, long n)
{
    sp_co **co = malloc((size_t)n * sizeof *co);
    if (!co)
        return -1;
    sp_co_attr at = {.stack = v->stack, .suspended = 1};
    /* The handle array is the benchmark's, not the coroutines': touch it
     * before the first reading.  Not with zeros: the compiler turns malloc
     * plus a zeroing memset into calloc, which leaves fresh pages alone. */
    memset(co, 0xff, (size_t)n * sizeof *co);
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++) {
        co[i] = sp_spawn(idler, NULL, &at);
        if (!co[i] || sp_resume(co[i]) != 0) /* runs to its sp_suspend */
            return -1;
    }
    long after = bench_rss_bytes();
    for (long i = 0; i < n; i++) {
        sp_resume(co[i]);
        sp_join(co[i], NULL);
    }
    free(co);
    return (double)(after - before) / (double)n;
}

static double idle_in_child(const variant *v, long n)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        double r = run_on_thread(v, n);
        ssize_t w = write(p[1], &r, sizeof r);
        _exit(w == sizeof r ? 0 : 1);
    }
    close(p[1]);
    double r = -1;
    if (read(p[0], &r, sizeof r) != sizeof r)
        r = -1;
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return r;
}

/* ---- timers ----
 * Insert and cancel one timer while a million others are pending: what a
 * server pays per request deadline (armed, then disarmed when the answer
 * comes first).  Runs on the timer heap directly, without parking, so the
 * figure is the structure's own cost. */

#define TIMERS_PENDING 1000000

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static double bench_timers(const variant *v, long iters)
{
    sp__theap h = {0};
    sp_co *pending = calloc(TIMERS_PENDING, sizeof *pending);
    sp_co extra[64];
    if (!pending)
        return -1;
    uint64_t x = 88172645463325252ull;
    int64_t now = sp_now();
    /* Deadlines spread over the next minute, as request timeouts are. */
    for (long i = 0; i < TIMERS_PENDING; i++) {
        pending[i].deadline = now + (int64_t)(rng_next(&x) % 60000000000ull);
        if (sp__theap_push(&h, &pending[i]) != 0)
            return -1;
    }
    memset(extra, 0, sizeof extra);
    double t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        sp_co *t = &extra[i & 63];
        t->deadline = now + (int64_t)(rng_next(&x) % 60000000000ull);
        sp__theap_push(&h, t);
        sp__theap_remove(&h, t);
    }
    double per = (bench_now_ns() - t0) / (double)iters;
    free(pending);
    free(h.a);
    return per;
}

/* ---- echo ---- */

static const char *echo_server_path(void)
{
    const char *env = getenv("SPINDLE_ECHO_SERVER");
    if (env)
        return env;
    if (access(SP_ECHO_BUILD, X_OK) == 0)
        return SP_ECHO_BUILD;
    return SP_ECHO_INSTALL;
}

static void bench_echo(const char *bench, int runs, int json, int peers)
{
    static const char *const backends[] = {"epoll", "uring"};
    for (int i = 0; i < 2; i++) {
        char impl[32];
        snprintf(impl, sizeof impl, "spindle/%s", backends[i]);
        /* No idle deadline: the libuv and libevent peers arm none either,
         * and a deadline costs two clock reads and a timer a message. */
        char *argv[] = {(char *)echo_server_path(), "--backend", (char *)backends[i],
                        "--idle-ms", "-1", NULL};
        bench_echo_run(bench, impl, argv, runs, json, stdout);
    }
    if (peers)
        bench_echo_peers(bench, runs, json, stdout);
}

/* ---- driver ---- */

static void config(sp_config *c, sp_ctx_kind ctx, sp_switch_mode mode, int fpshared)
{
    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->switch_mode = mode;
    c->stack = SP_STACK_FIXED;
    c->fpenv_shared = fpshared;
}

/* Picks an iteration count that takes about target_ns per run. */
static long calibrate(const variant *v, double target_ns)
{
    long iters = 1000;
    for (;;) {
        double per = run_on_thread(v, iters);
        if (per <= 0)
            return iters;
        if (per * (double)iters > target_ns / 8 || iters > 100000000)
            return (long)(target_ns / per) + 1;
        iters *= 8;
    }
}

static void measure(const char *bench, const variant *v, const char *unit,
                    int runs, int json)
{
    double samples[BENCH_MAX_RUNS];
    long iters = calibrate(v, 1e8); /* ~0.1 s a run; also the warm-up */
    for (int r = 0; r < runs; r++) {
        samples[r] = run_on_thread(v, iters);
        if (samples[r] < 0) {
            bench_print_skip(stdout, bench, v->impl, "failed", json);
            return;
        }
    }
    bench_row row = {0};
    snprintf(row.bench, sizeof row.bench, "%s", bench);
    snprintf(row.impl, sizeof row.impl, "%s", v->impl);
    snprintf(row.unit, sizeof row.unit, "%s", unit);
    bench_summarize(&row, samples, runs);
    bench_print(stdout, &row, json);
}

static void measure_idle(const variant *v, long n, int runs, int json)
{
    double samples[BENCH_MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        samples[r] = idle_in_child(v, n);
        if (samples[r] < 0) {
            char why[96];
            snprintf(why, sizeof why, "could not keep %ld coroutines alive", n);
            bench_print_skip(stdout, "idle_memory", v->impl, why, json);
            return;
        }
    }
    bench_row row = {0};
    snprintf(row.bench, sizeof row.bench, "idle_memory");
    snprintf(row.impl, sizeof row.impl, "%s", v->impl);
    snprintf(row.unit, sizeof row.unit, "bytes/co");
    row.n = n;
    bench_summarize(&row, samples, runs);
    bench_print(stdout, &row, json);
}

static int wanted(const char *only, const char *bench)
{
    return !only || strcmp(only, bench) == 0;
}

static void usage(FILE *f)
{
    fputs("usage: spindle micro [--peers] [--json] [--bench NAME] [--runs N] [--quick]\n"
          "  benches: switch, spawn, idle_memory, timers, chan_pingpong, skynet,\n"
          "           spawn_mn, echo_rtt, echo_1000\n"
          "  --peers   also run the peer programs (Boost.Context, Boost.Fiber, State\n"
          "            Threads, glibc swapcontext, pthread, libuv, libevent, Go) in\n"
          "            the same run\n"
          "  --json    one JSON object per line instead of a table\n"
          "  --bench   only this benchmark\n"
          "  --runs N  runs per figure (median, min, max); default 5\n"
          "  --quick   idle_memory at 100,000 only (skips the 1,000,000 runs)\n",
          f);
}

int spindle_micro(int argc, char **argv)
{
    int peers = 0, json = 0, quick = 0, runs = bench_runs(5);
    const char *only = NULL;
    static const struct option opts[] = {
        {"peers", no_argument, 0, 'p'}, {"json", no_argument, 0, 'j'},
        {"bench", required_argument, 0, 'b'}, {"runs", required_argument, 0, 'r'},
        {"quick", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': peers = 1; break;
        case 'j': json = 1; break;
        case 'q': quick = 1; break;
        case 'b': only = optarg; break;
        case 'r': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || n < 1 || n > BENCH_MAX_RUNS) {
                fprintf(stderr, "spindle micro: --runs wants a whole number from 1 to %d, not '%s'\n",
                        BENCH_MAX_RUNS, optarg);
                return 2;
            }
            runs = (int)n;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spindle micro: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    static const char *const benches[] = {"switch", "spawn", "idle_memory", "timers",
                                          "chan_pingpong", "skynet", "spawn_mn",
                                          "echo_rtt", "echo_1000"};
    int known = !only;
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        known |= only && !strcmp(only, benches[i]);
    if (!known) {
        fprintf(stderr, "spindle micro: unknown bench '%s' (switch, spawn, idle_memory, "
                        "timers, chan_pingpong, skynet, spawn_mn, echo_rtt, echo_1000)\n",
                only);
        return 2;
    }
    /* One CPU for every single-threaded measurement, ours and the peers':
     * a run that migrates mid-measurement is noise.  The echo benchmarks
     * pin a server and a client to two CPUs themselves. */
    cpu_set_t all, set;
    sched_getaffinity(0, sizeof all, &all);
    CPU_ZERO(&set);
    CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &set);
    int pinned = sched_setaffinity(0, sizeof set, &set) == 0;
    if (!json)
        printf("# spindle micro: median of %d runs (min, max); %s\n", runs,
               pinned ? "pinned to one CPU" : "not pinned");
    bench_print_header(stdout, json);

    if (wanted(only, "switch")) {
        variant v[9] = {0};
        config(&v[0].cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 0);
        v[0].impl = "spindle/asm";
        config(&v[1].cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 1);
        v[1].impl = "spindle/asm-nofp";
        config(&v[2].cfg, SP_CTX_UCONTEXT, SP_SWITCH_DIRECT, 0);
        v[2].impl = "spindle/ucontext";
        config(&v[3].cfg, SP_CTX_SJLJ, SP_SWITCH_DIRECT, 0);
        v[3].impl = "spindle/sjlj";
        config(&v[4].cfg, SP_CTX_ASM, SP_SWITCH_STAR, 0);
        v[4].impl = "spindle/star";
        config(&v[5].cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 0);
        v[5].impl = "spindle/yield_to";
        config(&v[6].cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 0);
        v[6].impl = "spindle/asm-fpflags";
        v[6].raise = 1;
        config(&v[7].cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 0);
        v[7].impl = "spindle/jump";
        config(&v[8].cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 1);
        v[8].impl = "spindle/jump-nofp";
        for (int i = 0; i < 9; i++) {
            v[i].run = i == 5 ? bench_yield_to : i >= 7 ? bench_jump : bench_yield;
            v[i].stack = SP_STACK_FIXED;
#if SP_ASAN || SP_TSAN
            /* The bare switch tells the sanitizer nothing of its stacks. */
            if (v[i].run == bench_jump) {
                bench_print_skip(stdout, "switch", v[i].impl, "not under a sanitizer", json);
                continue;
            }
#endif
            measure("switch", &v[i], "ns/op", runs, json);
        }
        if (peers)
            bench_peers_run("switch", json, stdout);
    }
    if (wanted(only, "spawn")) {
        static const sp_stack_kind kinds[] = {SP_STACK_FIXED, SP_STACK_VIRTUAL, SP_STACK_SHARED};
        static const char *const names[] = {"spindle/fixed", "spindle/virtual", "spindle/shared"};
        for (int i = 0; i < 3; i++) {
            variant v = {.impl = names[i], .run = bench_spawn, .stack = kinds[i]};
            config(&v.cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 0);
            measure("spawn", &v, "ns/op", runs, json);
        }
        if (peers)
            bench_peers_run("spawn", json, stdout);
    }
    if (wanted(only, "idle_memory")) {
        static const sp_stack_kind kinds[] = {SP_STACK_FIXED, SP_STACK_VIRTUAL, SP_STACK_SHARED};
        static const char *const names[] = {"spindle/fixed", "spindle/virtual", "spindle/shared"};
        /* A count of bytes does not drift (BENCH.md): three runs at 100,000
         * show that, and one run at 1,000,000 saves a minute each. */
        for (int k = 0; k < (quick ? 1 : 2); k++) {
            long n = k == 0 ? 100000 : 1000000;
            int mruns = k == 0 ? (runs < 3 ? runs : 3) : 1;
            for (int i = 0; i < 3; i++) {
                variant v = {.impl = names[i], .run = bench_idle, .stack = kinds[i]};
                config(&v.cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 0);
                measure_idle(&v, n, mruns, json);
            }
        }
        if (peers)
            bench_peers_run("idle_memory", json, stdout);
    }
    if (wanted(only, "timers")) {
        variant v = {.impl = "spindle/heap4", .run = bench_timers, .stack = SP_STACK_FIXED};
        config(&v.cfg, SP_CTX_ASM, SP_SWITCH_DIRECT, 0);
        measure("timers", &v, "ns/op", runs, json);
    }
    /* Still pinned: micro_sync unpins only around the Go peer's go/2p rows. */
    micro_sync(only, runs, json, peers, &all);
    if (wanted(only, "echo_rtt") || wanted(only, "echo_1000")) {
        sched_setaffinity(0, sizeof all, &all);
        bench_echo_note(stdout, json);
        if (wanted(only, "echo_rtt"))
            bench_echo("echo_rtt", runs, json, peers);
        if (wanted(only, "echo_1000"))
            bench_echo("echo_1000", runs, json, peers);
    }
    return 0;
}
