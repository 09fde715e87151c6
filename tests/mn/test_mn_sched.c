/* The M:N scheduler: sp_run with several workers, stealing, joins, timers,
 * cancels, pinning, sp_park/sp_unpark and sp_spawn_in from other threads.
 * The channel and lock tests across workers are in tests/sync. */
#include "sp_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* Counts scale down under TSan. */
#define N(full) (SP_TEST_TSAN ? (full) / 10 : (full))

/* ---- result, and the wait for every coroutine ---- */

static int late_done;

static void *late(void *arg)
{
    (void)arg;
    sp_sleep_ms(20);
    __atomic_store_n(&late_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *main_result(void *arg)
{
    sp_co_attr a = {.detached = 1};
    assert_non_null(sp_spawn(late, NULL, &a));
    assert_int_not_equal(sp_worker_index(), -1);
    assert_non_null(sp_runtime_self());
    return IP(PI(arg) + 1);
}

static void test_run_returns_result_after_every_coroutine(void **state)
{
    (void)state;
    void *r = NULL;
    assert_int_equal(sp_test_run_workers(main_result, IP(41), &r, 2), 0);
    assert_int_equal(PI(r), 42);
    assert_int_equal(__atomic_load_n(&late_done, __ATOMIC_ACQUIRE), 1);
    assert_int_equal(sp_worker_index(), -1);
    assert_null(sp_runtime_self());
}

static void test_run_refuses_bad_worker_counts(void **state)
{
    (void)state;
    assert_int_equal(sp_test_run_workers(main_result, NULL, NULL, -1), -EINVAL);
    assert_int_equal(sp_test_run_workers(main_result, NULL, NULL, SP_MAX_WORKERS + 1), -EINVAL);
}

/* ---- stealing ---- */

static int seen_on[2];

static void *marker(void *arg)
{
    (void)arg;
    __atomic_store_n(&seen_on[sp_worker_index()], 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Busy on its worker without ever parking: only a thief can run the
 * marker meanwhile. */
static void *spinner(void *arg)
{
    (void)arg;
    int me = sp_worker_index();
    int64_t end = sp_now() + 20 * 1000000000LL;
    while (sp_now() < end)
        if (__atomic_load_n(&seen_on[!me], __ATOMIC_ACQUIRE))
            return IP(1);
    return IP(0);
}

static void *main_steal(void *arg)
{
    (void)arg;
    sp_co *m = sp_spawn(marker, NULL, NULL);
    sp_co *s = sp_spawn(spinner, NULL, NULL);
    void *r = NULL;
    assert_int_equal(sp_join(s, &r), 0);
    assert_int_equal(sp_join(m, NULL), 0);
    return r;
}

static void test_idle_worker_steals(void **state)
{
    (void)state;
    void *r = NULL;
    assert_int_equal(sp_test_run_workers(main_steal, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 1);
}

/* ---- join storms ---- */

static void *child(void *arg)
{
    sp_yield();
    return IP(PI(arg) * 3);
}

static void *parent(void *arg)
{
    for (int i = 0; i < 3; i++)
        sp_yield();
    sp_co *c = sp_spawn(child, arg, NULL);
    void *r = NULL;
    assert_int_equal(sp_join(c, &r), 0);
    return IP(PI(r) + 1);
}

static void *main_joins(void *arg)
{
    int n = (int)PI(arg);
    sp_co **cs = malloc((size_t)n * sizeof *cs);
    for (int i = 0; i < n; i++)
        assert_non_null(cs[i] = sp_spawn(parent, IP(i), NULL));
    long bad = 0;
    /* Joined in reverse: most have ended by then, on either worker. */
    for (int i = n - 1; i >= 0; i--) {
        void *r = NULL;
        assert_int_equal(sp_join(cs[i], &r), 0);
        bad += PI(r) != 3L * i + 1;
    }
    free(cs);
    return IP(bad);
}

static void test_join_storm(void **state)
{
    (void)state;
    for (int w = 2; w <= 4; w += 2) {
        void *r = IP(-1);
        assert_int_equal(sp_test_run_workers(main_joins, IP(N(20000)), &r, w), 0);
        assert_int_equal(PI(r), 0);
    }
}

/* ---- timers ---- */

static void *sleeper(void *arg)
{
    int64_t ms = PI(arg);
    int64_t t0 = sp_now();
    if (sp_sleep_ms(ms) != 0)
        return IP(-1);
    return IP(sp_now() - t0 >= ms * 1000000 ? 0 : 1);
}

static void *main_sleeps(void *arg)
{
    (void)arg;
    enum { K = 500 };
    sp_co *cs[K];
    for (int i = 0; i < K; i++)
        cs[i] = sp_spawn(sleeper, IP(1 + i % 20), NULL);
    long bad = 0;
    for (int i = 0; i < K; i++) {
        void *r;
        assert_int_equal(sp_join(cs[i], &r), 0);
        bad += PI(r) != 0;
    }
    return IP(bad);
}

static void test_sleeps_end_on_time(void **state)
{
    (void)state;
    void *r = IP(-1);
    assert_int_equal(sp_test_run_workers(main_sleeps, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 0);
}

/* ---- cancels from other workers ---- */

static void *long_sleeper(void *arg)
{
    (void)arg;
    int rc = sp_sleep_ms(60000);
    return IP(rc == -1 && errno == ECANCELED ? 1 : 0);
}

static void *long_parker(void *arg)
{
    (void)arg;
    int rc = sp_park(sp_now() + 60 * 1000000000LL);
    return IP(rc == -1 && errno == ECANCELED ? 1 : 0);
}

typedef struct cancel_span {
    sp_co **cs;
    int n;
} cancel_span;

static void *canceller(void *arg)
{
    cancel_span *c = arg;
    for (int i = 0; i < c->n; i++)
        assert_int_equal(sp_cancel(c->cs[i]), 0);
    return NULL;
}

static void *main_cancels(void *arg)
{
    (void)arg;
    enum { K = 400 };
    sp_co *cs[K];
    for (int i = 0; i < K; i++)
        cs[i] = sp_spawn(i % 2 ? long_sleeper : long_parker, NULL, NULL);
    sp_sleep_ms(10); /* they park, on both workers */
    /* Cancelled from several coroutines, wherever those run. */
    sp_co *c[4];
    cancel_span span[4];
    for (int i = 0; i < 4; i++) {
        span[i] = (cancel_span){cs + i * (K / 4), K / 4};
        c[i] = sp_spawn(canceller, &span[i], NULL);
    }
    for (int i = 0; i < 4; i++)
        sp_join(c[i], NULL);
    /* A sleeper the cancel missed wakes at its 60 s deadline, without
     * ECANCELED: it is not counted. */
    long ok = 0;
    for (int i = 0; i < K; i++) {
        void *r;
        assert_int_equal(sp_join(cs[i], &r), 0);
        ok += PI(r);
    }
    return IP(ok);
}

static void test_cancel_across_workers(void **state)
{
    (void)state;
    void *r = NULL;
    assert_int_equal(sp_test_run_workers(main_cancels, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 400);
}

/* ---- sp_park / sp_unpark ---- */

typedef struct pinger {
    sp_co *co;
    long wakes;
    int rounds;
} pinger;

static void *yield_once(void *arg)
{
    sp_yield();
    return arg;
}

/* Between parks it waits in a join too: the unparks that come meanwhile
 * must be kept, and must not look at what the join writes under another
 * lock (TSan watches). */
static void *parker(void *arg)
{
    pinger *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        if (sp_park(-1) != 0)
            return IP(-1);
        __atomic_fetch_add(&p->wakes, 1, __ATOMIC_ACQ_REL);
        if (i % 4 == 0 && sp_join(sp_spawn(yield_once, NULL, NULL), NULL) != 0)
            return IP(-1);
    }
    return NULL;
}

typedef struct foreign {
    pinger *ps;
    int n;
} foreign;

/* A plain thread: no coroutine of its own.  Unparks each parker until it
 * has seen all its rounds; an unpark before a park is kept, so no
 * wake-up is lost whatever the timing. */
static void *foreign_unparker(void *arg)
{
    foreign *f = arg;
    int left = f->n;
    while (left) {
        left = 0;
        for (int i = 0; i < f->n; i++) {
            pinger *p = &f->ps[i];
            long w = __atomic_load_n(&p->wakes, __ATOMIC_ACQUIRE);
            if (w < p->rounds) {
                left++;
                sp_unpark(p->co);
            }
        }
        sched_yield();
    }
    return NULL;
}

static void *main_unpark(void *arg)
{
    (void)arg;
    enum { K = 64 };
    static pinger ps[K];
    for (int i = 0; i < K; i++) {
        ps[i].wakes = 0;
        ps[i].rounds = N(2000);
        ps[i].co = sp_spawn(parker, &ps[i], NULL);
    }
    foreign f = {ps, K};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, foreign_unparker, &f), 0);
    long bad = 0;
    for (int i = 0; i < K; i++) {
        void *r;
        assert_int_equal(sp_join(ps[i].co, &r), 0);
        bad += r != NULL;
    }
    pthread_join(t, NULL); /* it ends once all rounds are seen */
    return IP(bad);
}

static void test_unpark_from_a_foreign_thread(void **state)
{
    (void)state;
    for (int w = 1; w <= 2; w++) {
        void *r = IP(-1);
        assert_int_equal(sp_test_run_workers(main_unpark, NULL, &r, w), 0);
        assert_int_equal(PI(r), 0);
    }
}

static void *main_unpark_token(void *arg)
{
    (void)arg;
    sp_co *me = sp_self();
    assert_int_equal(sp_unpark(me), 0);
    assert_int_equal(sp_unpark(me), 0); /* kept once, not counted */
    assert_int_equal(sp_park(-1), 0);
    int64_t t0 = sp_now();
    assert_int_equal(sp_park(sp_now() + 20000000), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(sp_now() - t0 >= 20000000);
    return NULL;
}

static void test_unpark_is_kept_once(void **state)
{
    (void)state;
    assert_int_equal(sp_test_run_workers(main_unpark_token, NULL, NULL, 1), 0);
    assert_int_equal(sp_test_run_workers(main_unpark_token, NULL, NULL, 2), 0);
}

/* Two coroutines that wake each other, wherever each runs: the park /
 * wake race, a hundred thousand times. */
typedef struct pair {
    sp_co *other;
    long *turn; /* whose turn: 0 or 1 */
    int me, rounds;
} pair;

static void *ping(void *arg)
{
    pair *p = arg;
    while (!__atomic_load_n(&p->other, __ATOMIC_ACQUIRE))
        sp_yield();
    for (int i = 0; i < p->rounds; i++) {
        while (__atomic_load_n(p->turn, __ATOMIC_ACQUIRE) != p->me)
            if (sp_park(-1) != 0)
                return IP(-1);
        __atomic_store_n(p->turn, !p->me, __ATOMIC_RELEASE);
        sp_unpark(p->other);
    }
    return NULL;
}

static void *main_pingpong(void *arg)
{
    (void)arg;
    long turn = 0;
    pair a = {NULL, &turn, 0, N(100000)}, b = {NULL, &turn, 1, N(100000)};
    sp_co *ca = sp_spawn(ping, &a, NULL);
    sp_co *cb = sp_spawn(ping, &b, NULL);
    __atomic_store_n(&a.other, cb, __ATOMIC_RELEASE);
    __atomic_store_n(&b.other, ca, __ATOMIC_RELEASE);
    void *ra, *rb;
    assert_int_equal(sp_join(ca, &ra), 0);
    assert_int_equal(sp_join(cb, &rb), 0);
    return IP(ra == NULL && rb == NULL);
}

static void test_unpark_pingpong_across_workers(void **state)
{
    (void)state;
    void *r = NULL;
    assert_int_equal(sp_test_run_workers(main_pingpong, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 1);
}

/* ---- sp_spawn_in from another thread ---- */

static long spawned_sum;

static void *adder(void *arg)
{
    sp_yield();
    __atomic_fetch_add(&spawned_sum, PI(arg), __ATOMIC_RELAXED);
    return arg;
}

typedef struct spawner {
    sp_runtime *rt;
    sp_co *notify;
    sp_co **cs;
    int n;
} spawner;

static void *foreign_spawner(void *arg)
{
    spawner *sp = arg;
    for (int i = 0; i < sp->n; i++)
        __atomic_store_n(&sp->cs[i], sp_spawn_in(sp->rt, adder, IP(i + 1), NULL),
                         __ATOMIC_RELEASE);
    sp_unpark(sp->notify);
    return NULL;
}

static void *main_spawn_in(void *arg)
{
    (void)arg;
    enum { K = 2000 };
    static sp_co *cs[K];
    spawner sp = {sp_runtime_self(), sp_self(), cs, K};
    assert_non_null(sp.rt);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, foreign_spawner, &sp), 0);
    /* Parked until the thread has queued all of them. */
    while (!__atomic_load_n(&cs[K - 1], __ATOMIC_ACQUIRE))
        sp_park(sp_now() + 1000000000LL);
    pthread_join(t, NULL);
    long bad = 0;
    uint64_t prev = 0;
    for (int i = 0; i < K; i++) {
        void *r;
        assert_non_null(cs[i]);
        bad += sp_co_id(cs[i]) == prev;
        prev = sp_co_id(cs[i]);
        assert_int_equal(sp_join(cs[i], &r), 0);
        bad += PI(r) != i + 1;
    }
    return IP(bad);
}

static void test_spawn_in_from_a_foreign_thread(void **state)
{
    (void)state;
    spawned_sum = 0;
    void *r = IP(-1);
    assert_int_equal(sp_test_run_workers(main_spawn_in, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 0);
    assert_int_equal(spawned_sum, 2000L * 2001 / 2);
}

/* ---- pinning ---- */

static void *busy(void *arg)
{
    int64_t end = sp_now() + PI(arg) * 1000000;
    while (sp_now() < end)
        if (sp_now() % 16 == 0)
            sp_yield();
    return NULL;
}

static void *pinned_body(void *arg)
{
    if (arg) /* pins itself where it runs now, rather than from its spawn */
        assert_int_equal(sp_set_pinned(1), 0);
    int w0 = sp_worker_index();
    long moved = 0;
    for (int i = 0; i < N(3000); i++) {
        if (i % 3 == 0)
            sp_sleep_ns(1000);
        else
            sp_yield();
        moved += sp_worker_index() != w0;
    }
    return IP(moved);
}

static void *main_pinned(void *arg)
{
    (void)arg;
    enum { K = 16 };
    sp_co *pin[K], *load[K];
    sp_co_attr pa = {.pinned = 1};
    for (int i = 0; i < K; i++) {
        load[i] = sp_spawn(busy, IP(50), NULL);
        pin[i] = i % 2 ? sp_spawn(pinned_body, NULL, &pa) : sp_spawn(pinned_body, IP(1), NULL);
    }
    long moved = 0;
    for (int i = 0; i < K; i++) {
        void *r;
        sp_join(pin[i], &r);
        moved += PI(r);
        sp_join(load[i], NULL);
    }
    return IP(moved);
}

static void test_pinned_coroutine_stays(void **state)
{
    (void)state;
    void *r = IP(-1);
    assert_int_equal(sp_test_run_workers(main_pinned, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 0);
}

/* ---- sp_move_to ---- */

static void *mover(void *arg)
{
    (void)arg;
    assert_int_equal(sp_set_pinned(1), 0); /* no thief undoes the moves */
    long bad = 0;
    for (int i = 0; i < N(2000); i++) {
        int to = i % 3 == 0 ? 0 : i % 2;
        assert_int_equal(sp_move_to(to), 0);
        bad += sp_worker_index() != to;
        if (i % 5 == 0)
            sp_sleep_ns(1000); /* and it stays there across a park */
        bad += sp_worker_index() != to;
    }
    assert_int_equal(sp_move_to(2), -1);
    assert_int_equal(errno, EINVAL);
    return IP(bad);
}

static void *main_move(void *arg)
{
    (void)arg;
    sp_co *m[4];
    for (int i = 0; i < 4; i++)
        m[i] = sp_spawn(mover, NULL, NULL);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        sp_join(m[i], &r);
        bad += PI(r);
    }
    return IP(bad);
}

static void test_move_to_a_worker(void **state)
{
    (void)state;
    void *r = IP(-1);
    assert_int_equal(sp_test_run_workers(main_move, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 0);
    assert_int_equal(sp_move_to(0), -1); /* not on a worker */
}

/* ---- a burst of work reaches every idle worker ---- */

/* Spinners never park: each holds its worker until all have checked in,
 * which they can only do one per worker.  When the burst was queued while
 * one worker was looking for work (so the spawns woke nobody), that worker,
 * once it found its spinner, had to wake another for the rest; it did not,
 * and the others slept until the spinners gave up. */
enum { BURST_WORKERS = 8 };
static _Atomic uint64_t burst_mask;

static void *burst_spinner(void *arg)
{
    (void)arg;
    int64_t end = sp_now() + 10 * 1000000000LL; /* a backstop, not a bound */
    atomic_fetch_or(&burst_mask, 1ull << sp_worker_index());
    while (__builtin_popcountll(atomic_load(&burst_mask)) < BURST_WORKERS && sp_now() < end)
        ;
    return NULL;
}

static void *main_burst(void *arg)
{
    (void)arg;
    for (int r = 0; r < N(200); r++) {
        atomic_store(&burst_mask, 0);
        sp_co *co[BURST_WORKERS];
        for (int i = 0; i < BURST_WORKERS; i++)
            co[i] = sp_spawn(burst_spinner, NULL, NULL);
        for (int i = 0; i < BURST_WORKERS; i++)
            sp_join(co[i], NULL);
        int up = __builtin_popcountll(atomic_load(&burst_mask));
        if (up < BURST_WORKERS)
            return IP(r + 1);
        sp_sleep_ms(1); /* the workers go back to sleep between bursts */
    }
    return IP(0);
}

static void test_burst_reaches_every_worker(void **state)
{
    (void)state;
    void *r = IP(-1);
    assert_int_equal(sp_test_run_workers(main_burst, NULL, &r, BURST_WORKERS), 0);
    if (PI(r))
        fail_msg("burst %ld: not every worker woke to run a spinner within 10 s", (long)PI(r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_returns_result_after_every_coroutine),
        cmocka_unit_test(test_run_refuses_bad_worker_counts),
        cmocka_unit_test(test_idle_worker_steals),
        cmocka_unit_test(test_join_storm),
        cmocka_unit_test(test_sleeps_end_on_time),
        cmocka_unit_test(test_cancel_across_workers),
        cmocka_unit_test(test_unpark_from_a_foreign_thread),
        cmocka_unit_test(test_unpark_is_kept_once),
        cmocka_unit_test(test_unpark_pingpong_across_workers),
        cmocka_unit_test(test_spawn_in_from_a_foreign_thread),
        cmocka_unit_test(test_pinned_coroutine_stays),
        cmocka_unit_test(test_move_to_a_worker),
        cmocka_unit_test(test_burst_reaches_every_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
