/* Helpers for the sync tests across M:N workers: run a body under sp_run
 * with several workers, scale counts down under TSan, random numbers per
 * coroutine, and a record of which workers ran the coroutines.
 * As in sync_test.h, coroutines never call cmocka's checks (they run on
 * worker threads): they record what they saw, the test checks it after
 * sp_run returns. */
#ifndef SP_MN_TEST_H
#define SP_MN_TEST_H
#include "sync_test.h"

#include <stdatomic.h>

/* Counts scale down under TSan, which is ten times slower (and the machine
 * may have two cores for four workers). */
#define MN_N(full) (SP_TEST_TSAN ? (full) / 4 : (full))

/* Runs fn(arg) as the main coroutine of an M:N runtime of `workers`
 * workers, fixed stacks by default whatever the environment says (a
 * coroutine on a shared stack never leaves its worker). */
static inline void *mn_run(sp_co_fn fn, void *arg, int workers)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.workers = workers;
    cfg.stack = SP_STACK_FIXED;
    void *r = IP(-12345);
    int rc = sp_run(&cfg, fn, arg, &r);
    if (rc != 0)
        fail_msg("sp_run with %d workers: expected 0, got %d", workers, rc);
    return r;
}

/* xorshift32; the state must not be 0. */
static inline uint32_t mn_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* A seed per coroutine, never 0. */
static inline uint32_t mn_seed(uint32_t salt)
{
    return (uint32_t)(sp_co_id(sp_self()) * 2654435761u) ^ (salt * 40503u) ^ 0x9e3779b9u;
}

/* Workers that ran a coroutine which called mn_note (a bit per index). */
static _Atomic uint64_t mn_seen;

/* Records the caller's worker; *local keeps what this coroutine already
 * recorded, so the shared word is written once per worker, not per call
 * (an atomic per call would order the coroutines for TSan and hide races). */
static inline void mn_note(uint64_t *local)
{
    int w = sp_worker_index();
    if (w < 0 || w >= 64)
        return;
    uint64_t b = 1ull << w;
    if (!(*local & b)) {
        *local |= b;
        atomic_fetch_or_explicit(&mn_seen, b, memory_order_relaxed);
    }
}

static inline int mn_popcount(uint64_t x)
{
    return __builtin_popcountll(x);
}

/* ---- every worker up, and work on each ----
 * A worker thread starts in its own time, and a short test can be over
 * before the second one looks for work; and coroutines that wake each
 * other tend to stay on one worker (runnext).  So the tests first run one
 * spinner per worker: a spinner never parks, so it keeps its worker until
 * every spinner has checked in, and the only way for all of them to check
 * in is one per worker (idle workers steal the queued ones).  Each spinner
 * then calls `each` on its worker, which spawns coroutines there (pinned
 * ones stay: so every worker runs some of the test's coroutines). */

typedef void (*mn_each_fn)(int slot, int nslots);

static _Atomic uint64_t mn_up_mask;
static int mn_up_want;
static mn_each_fn mn_up_each;

static void *mn_spin_in(void *arg)
{
    int slot = (int)PI(arg);
    int64_t end = sp_now() + 10000000000LL;
    atomic_fetch_or(&mn_up_mask, 1ull << sp_worker_index());
    while (mn_popcount(atomic_load(&mn_up_mask)) < mn_up_want && sp_now() < end)
        ;
    if (mn_up_each)
        mn_up_each(slot, mn_up_want);
    return NULL;
}

/* From a coroutine of the runtime: returns 1 once `workers` distinct
 * workers have each run a spinner, which has called each(slot, workers)
 * (slot: 0 to workers-1; each may be NULL); 0 if they were not all up
 * within 10 seconds (each ran anyway). */
static inline int mn_all_workers_up(int workers, mn_each_fn each)
{
    atomic_store(&mn_up_mask, 0);
    sp_co *co[64];
    int n = workers < 64 ? workers : 64;
    mn_up_want = n;
    mn_up_each = each;
    for (int i = 0; i < n; i++)
        co[i] = sp_spawn(mn_spin_in, IP(i), NULL);
    for (int i = 0; i < n; i++)
        if (co[i])
            sp_join(co[i], NULL);
    return mn_popcount(atomic_load(&mn_up_mask)) >= n;
}

/* ---- spawning on every worker ---- */

#define MN_MAXCO 64

static sp_co *mn_spawned[MN_MAXCO];
static _Atomic int mn_nspawned;

/* For an mn_each_fn: spawns this slot's share of the coroutines fn(i),
 * 0 <= i < total (at most MN_MAXCO), on the calling worker: every other
 * one (the first included) pinned there. */
static inline void spawn_share(sp_co_fn fn, int total, int slot, int nslots)
{
    for (int i = slot; i < total; i += nslots) {
        sp_co_attr a = {.pinned = (i / nslots) % 2 == 0};
        sp_co *co = sp_spawn(fn, IP(i), &a);
        mn_spawned[atomic_fetch_add(&mn_nspawned, 1)] = co;
    }
}

/* Joins every coroutine spawn_share made; returns how many failed (did
 * not spawn, or returned non-NULL). */
static inline long join_spawned(void)
{
    long bad = 0;
    int n = atomic_load(&mn_nspawned);
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        if (!mn_spawned[i] || sp_join(mn_spawned[i], &r) != 0 || r)
            bad++;
    }
    atomic_store(&mn_nspawned, 0);
    return bad;
}

/* The value ledger of the channel storms: sent[v] and got[v] count how
 * often value v (1 <= v < n) was reported delivered by a send and taken by
 * a receive.  Fails on a value lost, made up or seen twice. */
static inline void mn_check_ledger(_Atomic uint8_t *sent, _Atomic uint8_t *got, uint32_t n,
                                   int workers)
{
    long lost = 0, dup = 0, phantom = 0;
    for (uint32_t v = 1; v < n; v++) {
        int sv = atomic_load(&sent[v]), g = atomic_load(&got[v]);
        lost += sv && !g;
        phantom += g && !sv;
        dup += g > 1 || sv > 1;
    }
    CHECK_EQ(lost, 0, "values reported sent that nobody received (%d workers)", workers);
    CHECK_EQ(phantom, 0, "values received that no send reported delivered (%d workers)",
             workers);
    CHECK_EQ(dup, 0, "values sent or received twice (%d workers)", workers);
}

#endif
