/* spindle micro: the sync benchmarks, with the Go peers measured in the
 * same run.
 *
 *   chan_pingpong  ns per message between two coroutines over unbuffered
 *                  channels on one worker (a round trip is two messages)
 *   skynet         ms for the tree of 1,000,000 coroutines (ten children
 *                  each) whose leaves send their numbers back up, summed
 *                  through one unbuffered channel per parent
 *   spawn_mn       spawns per second, from 64 coroutines spawning at once,
 *                  on one worker and on two (M:N, stealing)
 *
 * The rows with several workers (chan_pingpong/cross-worker, skynet/2w,
 * spawn_mn/2w) run under sp_run with cfg.workers = 2.
 *
 * Each figure is measured on a thread of its own (a scheduler is configured
 * once per thread), as the median of `runs` runs after a warm-up on that
 * same thread, so that pools are as warm as the Go heap of the peer after
 * its warm-up.  spindle micro calls micro_sync() after pinning itself to
 * one CPU; the 2-worker rows and the Go peer's go/2p rows get the CPUs
 * back (the peer pins itself to one CPU for go/1p, see
 * bench/peers/go/main.go). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <spindle.h>
#include <spindle/sync.h>

#include "bench.h"
#include "micro.h"
#include "peers.h"

/* About 0.1 s a run, after a calibration that doubles the count until one
 * pass takes 10 ms (the warm-up): as bench/peers/peer.h does for the C
 * peers and main.go for the Go one. */
#define TARGET_NS 1e8
#define CALIBRATE_NS 1e7

/* A measurement: fn(arg, n) returns the figure for n operations (and stores
 * the nanoseconds it took in *ns), or -1. */
typedef double (*measure_fn)(void *arg, long n, double *ns);

typedef struct job {
    sp_config cfg;
    measure_fn fn;
    void *arg;
    long n;           /* 0: calibrate to TARGET_NS */
    int runs;
    /* fn runs in the main coroutine of sp_run(&cfg) (on cfg.workers
     * workers, which keep their pools warm from run to run), not on the
     * thread's root. */
    int in_run;
    double samples[BENCH_MAX_RUNS];
    int ok;
} job;

/* The calibration or warm-up, then the runs. */
static void *job_body(void *p)
{
    job *j = p;
    double ns = 0;
    long n = j->n;
    if (n == 0) {
        for (n = 256;; n *= 2) {
            if (j->fn(j->arg, n, &ns) < 0)
                return NULL;
            if (ns >= CALIBRATE_NS || n >= (1L << 40))
                break;
        }
        n = (long)((double)n * TARGET_NS / (ns > 1 ? ns : 1)) & ~1L;
        if (n < 2)
            n = 2;
    } else if (j->fn(j->arg, n, &ns) < 0) { /* the warm-up */
        return NULL;
    }
    for (int r = 0; r < j->runs; r++)
        if ((j->samples[r] = j->fn(j->arg, n, &ns)) < 0)
            return NULL;
    j->ok = 1;
    return NULL;
}

static void *job_thread(void *p)
{
    job *j = p;
    if (j->in_run)
        sp_run(&j->cfg, job_body, j, NULL);
    else if (sp_thread_init(&j->cfg) == 0)
        job_body(j);
    return NULL;
}

static void config(sp_config *c)
{
    memset(c, 0, sizeof *c);
    c->workers = 1;
    c->ctx = SP_CTX_ASM;
    c->switch_mode = SP_SWITCH_DIRECT;
    c->stack = SP_STACK_FIXED;
}

/* Runs j on a new thread and prints its row (or a SKIP saying it failed). */
static void measure(job *j, const char *bench, const char *impl, const char *unit,
                    long popn, int json)
{
    pthread_t t;
    if (pthread_create(&t, NULL, job_thread, j) != 0) {
        bench_print_skip(stdout, bench, impl, "cannot create a thread", json);
        return;
    }
    pthread_join(t, NULL);
    if (!j->ok) {
        bench_print_skip(stdout, bench, impl, "failed", json);
        return;
    }
    bench_row row = {0};
    snprintf(row.bench, sizeof row.bench, "%s", bench);
    snprintf(row.impl, sizeof row.impl, "%s", impl);
    snprintf(row.unit, sizeof row.unit, "%s", unit);
    row.n = popn;
    bench_summarize(&row, j->samples, j->runs);
    bench_print(stdout, &row, json);
}

/* ---- chan_pingpong ---- */

typedef struct pingpong {
    sp_chan *ping, *pong;
    long msgs;
    double ns;
    int cross;        /* the two ends on two workers */
} pingpong;

/* cross-worker: each end moves to a worker of its own and stays there. */
static void place(pingpong *p, int worker)
{
    if (p->cross && (sp_move_to(worker) != 0 || sp_set_pinned(1) != 0))
        abort(); /* a row that is not what it says is worse than none */
}

static void *echo(void *arg)
{
    pingpong *p = arg;
    place(p, 1);
    long v;
    while (sp_chan_recv(p->ping, &v, -1) == 0) {
        v++;
        if (sp_chan_send(p->pong, &v, -1) != 0)
            return (void *)-1;
    }
    return NULL;
}

static void *pinger(void *arg)
{
    pingpong *p = arg;
    place(p, 0);
    double t0 = bench_now_ns();
    for (long i = 0; i < p->msgs / 2; i++) {
        long v = i;
        if (sp_chan_send(p->ping, &v, -1) != 0 || sp_chan_recv(p->pong, &v, -1) != 0 ||
            v != i + 1)
            return (void *)-1;
    }
    p->ns = bench_now_ns() - t0;
    return NULL;
}

static double run_pingpong(void *arg, long msgs, double *ns)
{
    /* Heap, not the root's stack: nothing a coroutine reads lives on a
     * stack, whatever the stack kind. */
    pingpong *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->msgs = msgs;
    p->cross = arg != NULL;
    p->ping = sp_chan_make(sizeof(long), 0);
    p->pong = sp_chan_make(sizeof(long), 0);
    void *rq = (void *)-1, *re = (void *)-1;
    if (p->ping && p->pong) {
        sp_co *e = sp_spawn(echo, p, NULL), *q = sp_spawn(pinger, p, NULL);
        if (q)
            sp_join(q, &rq);
        sp_chan_close(p->ping); /* ends the echo */
        if (e)
            sp_join(e, &re);
    }
    sp_chan_free(p->ping);
    sp_chan_free(p->pong);
    *ns = p->ns;
    free(p);
    return rq || re ? -1 : *ns / (double)msgs;
}

/* ---- skynet ---- */

#define SKYNET_LEAVES 1000000L
#define SKYNET_DIV 10

typedef struct sky {
    sp_chan *out;
    long num, size;
    const sp_co_attr *attr;
} sky;

static void *skynet(void *arg)
{
    sky me = *(sky *)arg; /* the parent frees its block once we have sent */
    if (me.size == 1) {
        sp_chan_send(me.out, &me.num, -1);
        return NULL;
    }
    sp_chan *rc = sp_chan_make(sizeof(long), 0);
    sky *kids = malloc(SKYNET_DIV * sizeof *kids);
    if (!rc || !kids)
        abort();
    long step = me.size / SKYNET_DIV;
    for (int i = 0; i < SKYNET_DIV; i++) {
        kids[i] = (sky){rc, me.num + i * step, step, me.attr};
        if (!sp_spawn(skynet, &kids[i], me.attr))
            abort(); /* a benchmark has no partial answer */
    }
    long sum = 0;
    for (int i = 0; i < SKYNET_DIV; i++) {
        long v;
        sp_chan_recv(rc, &v, -1);
        sum += v;
    }
    free(kids);
    sp_chan_free(rc);
    sp_chan_send(me.out, &sum, -1);
    return NULL;
}

/* n is ignored: one run is the whole tree.  Returns ms. */
static double run_skynet(void *arg, long n, double *ns)
{
    const sp_co_attr *attr = arg;
    sky *top = malloc(sizeof *top);
    if (!top || !(top->out = sp_chan_make(sizeof(long), 0))) {
        free(top);
        return -1;
    }
    top->num = 0;
    top->size = SKYNET_LEAVES;
    top->attr = attr;
    double t0 = bench_now_ns();
    long sum = -1;
    if (sp_spawn(skynet, top, attr))
        sp_chan_recv(top->out, &sum, -1);
    *ns = bench_now_ns() - t0;
    sp_chan_free(top->out);
    free(top);
    return sum == SKYNET_LEAVES * (SKYNET_LEAVES - 1) / 2 ? *ns / 1e6 : -1;
}

/* ---- spawn_mn ---- */

#define SPAWNERS 64
/* A spawner yields after this many spawns, so the children run while the
 * others spawn and the live population stays near SPAWNERS * BATCH. */
#define SPAWN_BATCH 16

/* The children count down with an atomic and the last one unparks the
 * measuring coroutine: one way to wait on one worker or on several, and
 * no sync-layer object in what is measured. */
typedef struct spawn_run {
    long each;
    long left;        /* atomic: children not yet ended */
    sp_co *waiter;
} spawn_run;

static void *spawned(void *arg)
{
    spawn_run *r = arg;
    /* The waiter frees r only after the unpark below. */
    if (__atomic_sub_fetch(&r->left, 1, __ATOMIC_ACQ_REL) == 0)
        sp_unpark(r->waiter);
    return NULL;
}

static void *spawner(void *arg)
{
    spawn_run *r = arg;
    long each = r->each; /* r may be freed once our last child ends */
    sp_co_attr d = {.detached = 1};
    for (long i = 0; i < each; i++) {
        if (!sp_spawn(spawned, r, &d))
            abort();
        if (i % SPAWN_BATCH == SPAWN_BATCH - 1)
            sp_yield();
    }
    return NULL;
}

/* In a coroutine (job.in_run).  Returns spawns per second. */
static double run_spawn(void *arg, long n, double *ns)
{
    (void)arg;
    spawn_run *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->each = n / SPAWNERS + 1;
    long total = r->each * SPAWNERS;
    r->left = total;
    r->waiter = sp_self();
    sp_co_attr d = {.detached = 1};
    double t0 = bench_now_ns();
    for (int i = 0; i < SPAWNERS; i++)
        if (!sp_spawn(spawner, r, &d))
            abort();
    /* Exactly one unpark comes, from the last child: one park takes it,
     * and none is left over for the next run. */
    int rc = sp_park(-1);
    *ns = bench_now_ns() - t0;
    free(r);
    return rc == 0 ? (double)total / (*ns / 1e9) : -1;
}

/* ---- driver ---- */

/* The CPUs `spindle micro` was started with (micro_sync's argument). */
static cpu_set_t start_cpus;

/* Gives this thread (whose affinity new threads and the peers inherit)
 * the CPUs the command was started with, for as long as the caller needs
 * them: the 2-worker rows and the Go peer's go/2p rows need two.  Returns
 * whether there is a pinning for pin_again() to restore. */
static int unpin(cpu_set_t *was)
{
    int saved = sched_getaffinity(0, sizeof *was, was) == 0;
    sched_setaffinity(0, sizeof start_cpus, &start_cpus);
    return saved;
}

static void pin_again(int saved, const cpu_set_t *was)
{
    if (saved)
        sched_setaffinity(0, sizeof *was, was);
}

/* The peer takes its run count from SPINDLE_BENCH_RUNS: set it to ours. */
static void peers_unpinned(const char *bench, int runs, int json)
{
    char *env = getenv("SPINDLE_BENCH_RUNS");
    char *was_runs = env ? strdup(env) : NULL;
    char nruns[16];
    snprintf(nruns, sizeof nruns, "%d", runs);
    setenv("SPINDLE_BENCH_RUNS", nruns, 1);
    cpu_set_t was;
    int saved = unpin(&was);
    bench_peers_run(bench, json, stdout);
    pin_again(saved, &was);
    if (was_runs)
        setenv("SPINDLE_BENCH_RUNS", was_runs, 1);
    else
        unsetenv("SPINDLE_BENCH_RUNS");
    free(was_runs);
}

static int wanted(const char *only, const char *bench)
{
    return !only || strcmp(only, bench) == 0;
}

void micro_sync(const char *only, int runs, int json, int peers, const cpu_set_t *cpus)
{
    start_cpus = *cpus;
    if (runs < 1)
        runs = 1;
    if (runs > BENCH_MAX_RUNS)
        runs = BENCH_MAX_RUNS;
    if (wanted(only, "chan_pingpong")) {
        job j = {.fn = run_pingpong, .runs = runs};
        config(&j.cfg);
        measure(&j, "chan_pingpong", "spindle/same-worker", "ns/msg", 0, json);
        job j2 = {.fn = run_pingpong, .arg = "cross", .runs = runs, .in_run = 1};
        config(&j2.cfg);
        j2.cfg.workers = 2;
        cpu_set_t was;
        int saved = unpin(&was);
        measure(&j2, "chan_pingpong", "spindle/cross-worker", "ns/msg", 0, json);
        pin_again(saved, &was);
        if (peers)
            peers_unpinned("chan_pingpong", runs, json);
    }
    if (wanted(only, "skynet")) {
        /* Shared stacks: the FIFO run queue runs the tree breadth first,
         * so nearly all 1,111,111 coroutines are alive at the peak.  A fixed
         * stack commits at least a page each: with 16 KiB fixed stacks the
         * process peaked at 4.7 GB and ran slower (the first run pays the
         * page faults); a shared-stack coroutine keeps only the frames it
         * parked with (under 1 KiB), and one not started yet none, so the
         * process peaks near 0.6 GB. */
        static const sp_co_attr attr = {.stack = SP_STACK_SHARED, .detached = 1};
        job j = {.fn = run_skynet, .arg = (void *)&attr, .n = 1, .runs = runs};
        config(&j.cfg);
        measure(&j, "skynet", "spindle/1w", "ms", SKYNET_LEAVES, json);
        /* Two workers: fixed stacks, since shared-stack coroutines never
         * leave the worker that spawned them.  A worker runs the child it
         * just spawned next (runnext), so the tree goes depth first and
         * few coroutines are alive at once: pooled stacks stay warm. */
        static const sp_co_attr attr2 = {.stack = SP_STACK_FIXED, .detached = 1};
        job j2 = {.fn = run_skynet, .arg = (void *)&attr2, .n = 1, .runs = runs, .in_run = 1};
        config(&j2.cfg);
        j2.cfg.workers = 2;
        cpu_set_t was;
        int saved = unpin(&was);
        measure(&j2, "skynet", "spindle/2w", "ms", SKYNET_LEAVES, json);
        pin_again(saved, &was);
        if (peers)
            peers_unpinned("skynet", runs, json);
    }
    if (wanted(only, "spawn_mn")) {
        job j = {.fn = run_spawn, .runs = runs, .in_run = 1};
        config(&j.cfg);
        measure(&j, "spawn_mn", "spindle/1w", "spawn/s", 0, json);
        job j2 = {.fn = run_spawn, .runs = runs, .in_run = 1};
        config(&j2.cfg);
        j2.cfg.workers = 2;
        cpu_set_t was;
        int saved = unpin(&was);
        measure(&j2, "spawn_mn", "spindle/2w", "spawn/s", 0, json);
        pin_again(saved, &was);
    }
}
