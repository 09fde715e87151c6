/* Wait groups and joins across M:N workers, in storms of thousands of
 * coroutines spawned on every worker:
 *  - the counter goes up (sp_wg_add) and down (sp_wg_done) from every
 *    worker at once, and waiters on several workers (some with deadlines
 *    that pass and wait again) wake only once every coroutine is done,
 *    all of them, round after round with the same wait group;
 *  - every coroutine is joined from a worker other than the one that
 *    spawned it, and hands its joiner its own result. */
#include "mn_test.h"

#define STORM MN_N(10000)   /* coroutines per round */
#define ROUNDS 3
#define WAITERS 8

static struct {
    sp_wg wg;
    _Atomic long done;       /* coroutines of this round past their work */
    _Atomic long early;      /* waiters that woke before every one was done */
    _Atomic long woke;       /* waits that returned 0 */
    _Atomic long timeouts;
    long want;               /* done count once the round is over */
} W;

static void *worker_co(void *arg)
{
    uint32_t rng = mn_seed((uint32_t)PI(arg));
    int k = (int)(mn_rand(&rng) % 4);
    for (int i = 0; i < k; i++)
        sp_yield();
    atomic_fetch_add(&W.done, 1);
    sp_wg_done(&W.wg);
    return NULL;
}

static void *waiter(void *arg)
{
    int timed = (int)PI(arg) % 2;
    for (;;) {
        int rc = sp_wg_wait(&W.wg, timed ? sp_deadline_ms(1) : -1);
        if (rc == 0)
            break;
        if (errno != ETIMEDOUT)
            return IP(-errno);
        atomic_fetch_add(&W.timeouts, 1);
    }
    if (atomic_load(&W.done) != W.want)
        atomic_fetch_add(&W.early, 1);
    atomic_fetch_add(&W.woke, 1);
    return NULL;
}

/* On every worker: this slot's share of the storm and of the waiters. */
static void wg_each(int slot, int nslots)
{
    sp_co_attr det = {.detached = 1};
    for (int i = slot; i < WAITERS; i += nslots) {
        sp_co_attr a = {.pinned = i % 2};
        mn_spawned[atomic_fetch_add(&mn_nspawned, 1)] = sp_spawn(waiter, IP(i), &a);
    }
    for (int i = slot; i < STORM; i += nslots) {
        /* Added before it is spawned, one at a time: the counter moves on
         * every worker while the others already count down. */
        sp_wg_add(&W.wg, 1);
        det.pinned = (i / nslots) % 2;
        if (!sp_spawn(worker_co, IP(i), &det))
            sp_wg_done(&W.wg);
    }
    sp_wg_done(&W.wg); /* this slot's hold */
}

static void *wg_main(void *arg)
{
    int workers = (int)PI(arg);
    sp_wg_init(&W.wg);
    long bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        atomic_store(&W.done, 0);
        W.want = STORM;
        /* Each slot holds the counter above 0 until it has spawned all. */
        sp_wg_add(&W.wg, workers);
        if (!mn_all_workers_up(workers, wg_each))
            return IP(-100);
        if (sp_wg_wait(&W.wg, -1) != 0)
            bad++;
        if (atomic_load(&W.done) != STORM)
            bad += 1000;
        bad += join_spawned();
    }
    return IP(bad);
}

static void run_wg(int workers)
{
    memset(&W, 0, sizeof W);
    void *r = mn_run(wg_main, IP(workers), workers);
    CHECK_EQ(PI(r), 0, "wait-group rounds that failed (+1: the main wait, +1000: it woke "
             "early, +1 per failed waiter; %d workers)", workers);
    CHECK_EQ(atomic_load(&W.early), 0, "waiters that woke before the counter reached 0 "
             "(%d workers)", workers);
    CHECK_EQ(atomic_load(&W.woke), (long)WAITERS * ROUNDS, "waiters that woke (%d workers)",
             workers);
}

static void test_wg_storm_2(void **state) { run_wg(2); }
static void test_wg_storm_4(void **state) { run_wg(4); }

/* ---- joins ---- */

#define JOIN_N MN_N(8000)
/* Odd, so that a joiner's stride walks through every worker's coroutines
 * (join_each deals them out round-robin): a joiner pinned where it starts
 * then joins across workers by construction.  With 8 and 2 workers each
 * joiner met one worker's coroutines only, and a storm whose unpinned
 * joiners all moved to their joinees' worker crossed none (seen once
 * under TSan). */
#define JOINERS 7

static struct {
    sp_co **co;              /* JOIN_N handles */
    int *born_on;            /* the worker each was spawned on */
    _Atomic long cross;      /* joins from another worker than the spawner's */
    _Atomic long bad;
    _Atomic int made;        /* slots done spawning */
} J;

static void *joinee(void *arg)
{
    long i = (long)PI(arg);
    if (i % 3 == 0)
        sp_yield();
    return IP(i * 3 + 1);
}

static void *joiner(void *arg)
{
    int j = (int)PI(arg);
    /* Joins every JOINERS-th coroutine, from the end: some have long
     * ended, some are still running on another worker. */
    for (long i = JOIN_N - 1 - j; i >= 0; i -= JOINERS) {
        void *r = NULL;
        if (sp_join(J.co[i], &r) != 0 || PI(r) != i * 3 + 1)
            atomic_fetch_add(&J.bad, 1);
        if (J.born_on[i] != sp_worker_index())
            atomic_fetch_add(&J.cross, 1);
    }
    return NULL;
}

static void join_each(int slot, int nslots)
{
    int me = sp_worker_index();
    for (long i = slot; i < JOIN_N; i += nslots) {
        sp_co_attr a = {.pinned = (i / nslots) % 2};
        J.born_on[i] = me;
        J.co[i] = sp_spawn(joinee, IP(i), &a);
    }
}

static void *join_main(void *arg)
{
    int workers = (int)PI(arg);
    if (!mn_all_workers_up(workers, join_each))
        return IP(-100);
    /* Every handle is there (the spinners were joined).  Joiners on every
     * worker: half pinned where they start. */
    sp_co *jn[JOINERS];
    for (int j = 0; j < JOINERS; j++) {
        sp_co_attr a = {.pinned = j % 2};
        jn[j] = sp_spawn(joiner, IP(j), &a);
    }
    long bad = 0;
    for (int j = 0; j < JOINERS; j++)
        if (!jn[j] || sp_join(jn[j], NULL) != 0)
            bad++;
    return IP(bad);
}

static void run_join(int workers)
{
    memset(&J, 0, sizeof J);
    J.co = calloc(JOIN_N, sizeof *J.co);
    J.born_on = calloc(JOIN_N, sizeof *J.born_on);
    assert_true(J.co && J.born_on);
    void *r = mn_run(join_main, IP(workers), workers);
    free(J.co);
    free(J.born_on);
    CHECK_EQ(PI(r), 0, "joiners that failed to spawn or join (%d workers)", workers);
    CHECK_EQ(atomic_load(&J.bad), 0, "joins that failed or got the wrong result (%d workers)",
             workers);
    CHECK_TRUE(atomic_load(&J.cross) > 0, "some joins crossed workers (%d workers)", workers);
}

static void test_join_storm_2(void **state) { run_join(2); }
static void test_join_storm_4(void **state) { run_join(4); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wg_storm_2), cmocka_unit_test(test_wg_storm_4),
        cmocka_unit_test(test_join_storm_2), cmocka_unit_test(test_join_storm_4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
