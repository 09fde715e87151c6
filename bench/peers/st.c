/* peer_st: State Threads 1.9 (libst-dev), the classic one-thread coroutine
 * runtime for servers.
 *
 *   switch       st/cond    ns per one-way switch: two ST threads ping-pong
 *                           through st_cond_signal/st_cond_wait (2 a trip)
 *   spawn        st/thread  ns for st_thread_create(joinable) + st_thread_join
 *                           of a thread that returns at once
 *   idle_memory  st/thread  resident bytes per thread, 100,000 parked in
 *                           st_cond_wait
 *
 * ST switches with its own setjmp/longjmp-style save and restore, and every
 * switch goes through its scheduler (_st_vp_schedule picks the run queue's
 * head), so st/cond is a scheduled switch, not a direct jump. */
#define _GNU_SOURCE
#include "peer.h"

#include <st.h>

/* The idle_memory stack: one page, the smallest ST accepts (it rounds the
 * size up to whole pages), and enough for a thread that only waits on a
 * condition: ST carves its thread object and key slots (448 bytes) from the
 * top of the stack and the wait path is a few hundred bytes deep. The figure
 * itself shows it fits: one resident page a thread (plus ST's calloc'd stack
 * descriptor), where an overflow into the unprotected red zone below would
 * make it two. With ST's default stack (stk_size 0: 64 KiB in Debian's 1.9
 * build) the resident figure is the same, as only the top page is touched;
 * the address space and page tables, which RSS does not count, are what
 * grow. */
#define PARK_STACK_SIZE 4096
#define IDLE_N 100000L

/* Ping-pong state: whose turn it is, so a signal sent before the partner
 * waits is not lost (an ST condition has no memory). */
typedef struct pingpong {
    st_cond_t to_main, to_partner;
    int turn; /* 0: main's, 1: the partner's */
    int stop;
} pingpong;

static void *partner(void *arg)
{
    pingpong *pp = arg;
    for (;;) {
        while (pp->turn != 1)
            st_cond_wait(pp->to_partner);
        if (pp->stop)
            return NULL;
        pp->turn = 0;
        st_cond_signal(pp->to_main);
    }
}

/* The alternative would be a yield-based ping-pong (st_yield in later forks
 * such as SRS's; in 1.9 only st_usleep(0), which goes through the sleep
 * queue and the idle thread's poll): we use conditions because they are what
 * an ST program hands work over with, and they switch to the partner
 * directly through the run queue. */
static double time_switch(void *arg, long ops)
{
    pingpong *pp = arg;
    long trips = ops / 2;
    double t0 = bench_now_ns();
    for (long i = 0; i < trips; i++) {
        pp->turn = 1;
        st_cond_signal(pp->to_partner);
        while (pp->turn != 0)
            st_cond_wait(pp->to_main);
    }
    return bench_now_ns() - t0;
}

static int bench_switch(void)
{
    pingpong pp = {st_cond_new(), st_cond_new(), 0, 0};
    if (!pp.to_main || !pp.to_partner)
        return -1;
    st_thread_t t = st_thread_create(partner, &pp, 1, 0);
    if (!t)
        return -1;
    peer_time("switch", "st/cond", time_switch, &pp);
    pp.stop = 1;
    pp.turn = 1;
    st_cond_signal(pp.to_partner);
    st_thread_join(t, NULL);
    st_cond_destroy(pp.to_main);
    st_cond_destroy(pp.to_partner);
    return 0;
}

static void *returns_at_once(void *arg)
{
    return arg;
}

/* Default stack size (0, 64 KiB): ST keeps freed stacks on a free list and
 * hands them out again, so after the warm-up no iteration pays for an mmap. */
static double time_spawn(void *arg, long ops)
{
    (void)arg;
    double t0 = bench_now_ns();
    for (long i = 0; i < ops; i++) {
        st_thread_t t = st_thread_create(returns_at_once, NULL, 1, 0);
        if (!t) {
            fprintf(stderr, "peer_st: st_thread_create: %s\n", strerror(errno));
            exit(1);
        }
        st_thread_join(t, NULL);
    }
    return bench_now_ns() - t0;
}

typedef struct parking {
    st_cond_t wake;
    int released;
    st_thread_t *threads;
} parking;

static void *park(void *arg)
{
    parking *pk = arg;
    while (!pk->released)
        st_cond_wait(pk->wake);
    return NULL;
}

/* Lets every thread that st_thread_create queued run up to its wait: ST has
 * no yield in 1.9, and a zero sleep puts this thread behind all of them. */
static void run_others(void)
{
    st_usleep(0);
}

static void release_all(parking *pk, long made)
{
    pk->released = 1;
    st_cond_broadcast(pk->wake);
    for (long i = 0; i < made; i++)
        st_thread_join(pk->threads[i], NULL);
}

/* Runs in a fresh child (peer_memory): ST is initialised here, and one
 * thread is parked and released first so that ST's own lazily made state is
 * in place before the baseline. ST makes each stack with its own anonymous
 * mmap; neighbouring ones merge into one mapping, so vm.max_map_count is no
 * limit, and parked threads hold no descriptors, so neither is the fd limit
 * that st_init sizes the select() event system by. */
static long memory_body(void *arg, long n, char *why, size_t whylen)
{
    (void)arg;
    parking pk = {0};
    if (st_init() < 0 || !(pk.wake = st_cond_new())) {
        snprintf(why, whylen, "st_init: %s", strerror(errno));
        return -1;
    }
    /* Allocated and touched before the baseline: the handles are ours. */
    pk.threads = calloc((size_t)n, sizeof *pk.threads);
    if (!pk.threads) {
        snprintf(why, whylen, "no memory for %ld handles", n);
        return -1;
    }
    memset(pk.threads, 0xff, (size_t)n * sizeof *pk.threads);

    pk.threads[0] = st_thread_create(park, &pk, 1, PARK_STACK_SIZE);
    if (!pk.threads[0]) {
        snprintf(why, whylen, "st_thread_create: %s", strerror(errno));
        return -1;
    }
    run_others();
    release_all(&pk, 1);
    pk.released = 0;

    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++) {
        pk.threads[i] = st_thread_create(park, &pk, 1, PARK_STACK_SIZE);
        if (!pk.threads[i]) {
            snprintf(why, whylen, "st_thread_create failed at thread %ld of %ld: %s",
                     i, n, strerror(errno));
            release_all(&pk, i);
            return -1;
        }
    }
    run_others();
    long after = bench_rss_bytes();
    release_all(&pk, n);
    return after - before;
}

int main(int argc, char **argv)
{
    const char *only = peer_parse_args(argc, argv);

    /* First, while this process has not initialised ST: each run forks. */
    if (peer_wants(only, "idle_memory"))
        peer_memory("idle_memory", "st/thread", memory_body, NULL, IDLE_N);

    if (!peer_wants(only, "switch") && !peer_wants(only, "spawn"))
        return 0;
    if (st_init() < 0) {
        fprintf(stderr, "peer_st: st_init: %s\n", strerror(errno));
        return 1;
    }
    if (peer_wants(only, "switch") && bench_switch() < 0)
        bench_skip_write(stdout, "switch", "st/cond", "could not make the ST threads");
    if (peer_wants(only, "spawn"))
        peer_time("spawn", "st/thread", time_spawn, NULL);
    return 0;
}
