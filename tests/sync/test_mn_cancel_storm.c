/* Cancel storms across M:N workers.  Victims park again and again in every
 * kind of sync wait (channel receive and send, buffered receive, select
 * with a deadline, mutex lock, condition wait, semaphore acquire) while
 * wakers on every worker complete those waits and cancellers on every
 * worker cancel random victims at random times, then all of them.  So a
 * wake, a deadline and a cancel race for the same wait, from different
 * threads.  Then:
 *  - every victim ended exactly once, and no wait returned twice;
 *  - a wait failed with ECANCELED only in a victim that was cancelled, and
 *    with ETIMEDOUT only where it had a deadline;
 *  - every value a send reported delivered was received exactly once, and
 *    no value was received that was not reported sent (a waker whose wake
 *    lost to a cancel must not count its value as delivered);
 *  - the mutexes were never held twice, and a condition wait that was
 *    cancelled still returned holding its mutex (the relock is not
 *    cancellable);
 *  - every semaphore unit released was acquired or is still there. */
#include "mn_test.h"

#define VICTIMS MN_N(600)
#define WAITS 200           /* waits per victim, until it is cancelled */
#define MAXV (1 << 20)      /* values any send may carry */

enum { K_RECV, K_SEND, K_RECV_BUF, K_SELECT, K_MUTEX, K_COND, K_SEM, K_COUNT };

static struct {
    sp_chan *u, *s, *buf;    /* wakers -> victims, victims -> wakers, buffered */
    sp_mutex lm, cm;
    sp_cond cv;
    sp_sem sem;
    sp_co *victim[VICTIMS];
    _Atomic uint8_t canceled[VICTIMS], ends[VICTIMS], in_wait[VICTIMS];
    _Atomic uint8_t sent[MAXV], got[MAXV];
    _Atomic uint32_t next_val;
    _Atomic int stop;
    _Atomic int lm_holder, cm_holder;   /* who holds the mutex, 0: nobody */
    long lm_plain, cm_plain;            /* plain: the mutexes guard them */
    _Atomic long lm_ok, cm_ok, cm_canceled;
    _Atomic long sem_released, sem_got;
    _Atomic long bad_err, double_return, double_hold, unexplained_cancel;
    _Atomic long outcome[K_COUNT][3];   /* 0, ETIMEDOUT, ECANCELED */
    _Atomic long victims_spawned;
} X;

static uint32_t fresh(void)
{
    uint32_t v = atomic_fetch_add(&X.next_val, 1);
    return v < MAXV ? v : 0; /* 0: out of values, not sent */
}

static void mark(_Atomic uint8_t *a, uint32_t v)
{
    if (v && v < MAXV)
        atomic_fetch_add(&a[v], 1);
}

static void hold(_Atomic int *holder, int me)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(holder, &none, me))
        atomic_fetch_add(&X.double_hold, 1);
}

static void unhold(_Atomic int *holder, int me)
{
    int was = me;
    if (!atomic_compare_exchange_strong(holder, &was, 0))
        atomic_fetch_add(&X.double_hold, 1);
}

/* No deadline half the time, else one up to a millisecond away: timeouts
 * race with wakes and cancels. */
static int64_t some_deadline(uint32_t *rng)
{
    uint32_t r = mn_rand(rng);
    return r % 2 ? -1 : sp_now() + (int64_t)(r >> 1) % 1000000;
}

/* One wait of kind k with deadline dl; returns 0 or the errno it failed
 * with. */
static int victim_wait(int me, int k, int64_t dl)
{
    int id = me + 1, err = 0, rc;
    uint32_t v = 0, w = 0, b = 0;
    switch (k) {
    case K_RECV:
        rc = sp_chan_recv(X.u, &v, dl);
        if (rc == 0)
            mark(X.got, v);
        break;
    case K_SEND:
        v = fresh();
        rc = v ? sp_chan_send(X.s, &v, dl) : 0;
        if (rc == 0)
            mark(X.sent, v);
        break;
    case K_RECV_BUF:
        rc = sp_chan_recv(X.buf, &v, dl);
        if (rc == 0)
            mark(X.got, v);
        break;
    case K_SELECT: {
        w = fresh();
        sp_select_case c[] = {{X.u, SP_CHAN_RECV, &v, 0},
                              {w ? X.s : NULL, SP_CHAN_SEND, &w, 0},
                              {X.buf, SP_CHAN_RECV, &b, 0}};
        v = b = 0;
        int got = sp_select(c, 3, dl);
        rc = got < 0 ? -1 : 0;
        if (got == 0)
            mark(X.got, v);
        else if (got == 1)
            mark(X.sent, w);
        else if (got == 2)
            mark(X.got, b);
        /* The cases that did not happen left their values alone. */
        if ((got != 0 && v) || (got != 2 && b))
            atomic_fetch_add(&X.bad_err, 1000);
        break;
    }
    case K_MUTEX:
        rc = sp_mutex_lock(&X.lm, dl);
        if (rc == 0) {
            hold(&X.lm_holder, id);
            long c = X.lm_plain;
            sp_yield();
            X.lm_plain = c + 1;
            atomic_fetch_add(&X.lm_ok, 1);
            unhold(&X.lm_holder, id);
            sp_mutex_unlock(&X.lm);
        }
        break;
    case K_COND: {
        if (sp_mutex_lock(&X.cm, -1) != 0) {
            rc = -1; /* cancelled while it queued for the mutex */
            break;
        }
        rc = sp_cond_wait(&X.cv, &X.cm, dl);
        err = rc ? errno : 0;
        /* Whatever happened, the mutex is ours again, ours alone. */
        hold(&X.cm_holder, id);
        X.cm_plain++;
        atomic_fetch_add(&X.cm_ok, 1);
        if (err == ECANCELED)
            atomic_fetch_add(&X.cm_canceled, 1);
        unhold(&X.cm_holder, id);
        sp_mutex_unlock(&X.cm); /* aborts if we do not hold it */
        errno = err;
        break;
    }
    case K_SEM: {
        rc = sp_sem_acquire(&X.sem, dl);
        if (rc == 0)
            atomic_fetch_add(&X.sem_got, 1);
        break;
    }
    default:
        rc = 0;
    }
    return rc == 0 ? 0 : errno;
}

static void *victim(void *arg)
{
    int me = (int)PI(arg);
    uint32_t rng = mn_seed((uint32_t)me + 7);
    for (int i = 0; i < WAITS; i++) {
        int k = (int)(mn_rand(&rng) % K_COUNT);
        int64_t dl = some_deadline(&rng);
        atomic_store(&X.in_wait[me], 1);
        int err = victim_wait(me, k, dl);
        if (atomic_exchange(&X.in_wait[me], 0) != 1)
            atomic_fetch_add(&X.double_return, 1);
        int slot = err == 0 ? 0 : err == ETIMEDOUT ? 1 : err == ECANCELED ? 2 : -1;
        if (slot < 0 || (slot == 1 && (dl < 0 || sp_now() < dl)))
            atomic_fetch_add(&X.bad_err, 1);
        else
            atomic_fetch_add(&X.outcome[k][slot], 1);
        if (err == ECANCELED) {
            if (!atomic_load(&X.canceled[me]))
                atomic_fetch_add(&X.unexplained_cancel, 1);
            break;
        }
    }
    atomic_fetch_add(&X.ends[me], 1);
    return NULL;
}

/* Completes victims' waits until told to stop. */
static void *waker(void *arg)
{
    uint32_t rng = mn_seed((uint32_t)PI(arg) + 1000);
    while (!atomic_load(&X.stop)) {
        uint32_t v;
        switch (mn_rand(&rng) % 7) {
        case 0:
            v = fresh();
            if (v && sp_chan_send(X.u, &v, sp_deadline_ms(1)) == 0)
                mark(X.sent, v);
            break;
        case 1:
            if (sp_chan_recv(X.s, &v, sp_deadline_ms(1)) == 0)
                mark(X.got, v);
            break;
        case 2:
            v = fresh();
            if (v && sp_chan_send(X.buf, &v, 0) == 0)
                mark(X.sent, v);
            break;
        case 3:
            if (mn_rand(&rng) % 4)
                sp_cond_signal(&X.cv);
            else
                sp_cond_broadcast(&X.cv);
            break;
        case 4:
            if (sp_sem_release(&X.sem) == 0)
                atomic_fetch_add(&X.sem_released, 1);
            break;
        case 5:
            /* Hold the lock a while, so lockers park on it.  With a
             * deadline: a timeout races with the hand-off of the lock. */
            if (sp_mutex_lock(&X.lm, sp_deadline_ms(1)) == 0) {
                hold(&X.lm_holder, -1);
                long c = X.lm_plain;
                sp_sleep_ms((int64_t)(mn_rand(&rng) % 2));
                X.lm_plain = c + 1;
                atomic_fetch_add(&X.lm_ok, 1);
                unhold(&X.lm_holder, -1);
                sp_mutex_unlock(&X.lm);
            }
            break;
        default:
            sp_yield();
        }
    }
    return NULL;
}

/* Cancels random victims at random times, then every one. */
static void *canceller(void *arg)
{
    uint32_t rng = mn_seed((uint32_t)PI(arg) + 2000);
    for (int i = 0; i < VICTIMS / 4; i++) {
        int t = (int)(mn_rand(&rng) % VICTIMS);
        atomic_store(&X.canceled[t], 1);
        sp_cancel(X.victim[t]);
        if (mn_rand(&rng) % 2 == 0)
            sp_sleep_ns((int64_t)(mn_rand(&rng) % 1000000));
        else
            sp_yield();
    }
    sp_sleep_ms(50);
    for (int t = (int)PI(arg) % 2; t < VICTIMS; t += 2) {
        atomic_store(&X.canceled[t], 1);
        sp_cancel(X.victim[t]);
    }
    return NULL;
}

static void storm_each(int slot, int nslots)
{
    for (int i = slot; i < VICTIMS; i += nslots) {
        sp_co_attr a = {.pinned = (i / nslots) % 3 == 0};
        X.victim[i] = sp_spawn(victim, IP(i), &a);
    }
    for (int i = 0; i < 2; i++) {
        sp_co_attr a = {.pinned = i == 0};
        mn_spawned[atomic_fetch_add(&mn_nspawned, 1)] = sp_spawn(waker, IP(slot * 2 + i), &a);
    }
}

static void *storm_main(void *arg)
{
    int workers = (int)PI(arg);
    X.u = sp_chan_make(sizeof(uint32_t), 0);
    X.s = sp_chan_make(sizeof(uint32_t), 0);
    X.buf = sp_chan_make(sizeof(uint32_t), 4);
    sp_mutex_init(&X.lm);
    sp_mutex_init(&X.cm);
    sp_cond_init(&X.cv);
    sp_sem_init(&X.sem, 0);
    atomic_store(&X.next_val, 1);
    if (!mn_all_workers_up(workers, storm_each))
        return IP(-100);
    long bad = 0;
    for (int i = 0; i < VICTIMS; i++)
        bad += X.victim[i] == NULL;
    sp_co *cn[8];
    int ncn = workers < 8 ? workers : 8;
    for (int i = 0; i < ncn; i++) {
        sp_co_attr a = {.pinned = i % 2};
        cn[i] = sp_spawn(canceller, IP(i), &a);
    }
    for (int i = 0; i < ncn; i++)
        if (!cn[i] || sp_join(cn[i], NULL) != 0)
            bad++;
    for (int i = 0; i < VICTIMS; i++)
        if (X.victim[i] && sp_join(X.victim[i], NULL) != 0)
            bad++;
    atomic_store(&X.stop, 1);
    bad += join_spawned();
    /* What is still buffered was sent and is received now. */
    uint32_t v;
    while (sp_chan_recv(X.buf, &v, 0) == 0)
        mark(X.got, v);
    long units = 0;
    while (sp_sem_acquire(&X.sem, 0) == 0)
        units++;
    atomic_fetch_add(&X.sem_got, units);
    sp_chan_free(X.u);
    sp_chan_free(X.s);
    sp_chan_free(X.buf);
    return IP(bad);
}

static void run_storm(int workers)
{
    memset(&X, 0, sizeof X);
    void *r = mn_run(storm_main, IP(workers), workers);
    CHECK_EQ(PI(r), 0, "coroutines that failed to spawn or join (%d workers)", workers);
    long ends_bad = 0;
    for (int i = 0; i < VICTIMS; i++)
        ends_bad += atomic_load(&X.ends[i]) != 1;
    CHECK_EQ(ends_bad, 0, "victims that did not end exactly once (%d workers)", workers);
    CHECK_EQ(atomic_load(&X.double_return), 0, "waits that returned twice (%d workers)",
             workers);
    CHECK_EQ(atomic_load(&X.bad_err), 0, "waits that failed with an unexpected errno (+1) or "
             "a select that wrote a case it did not perform (+1000) (%d workers)", workers);
    CHECK_EQ(atomic_load(&X.unexplained_cancel), 0, "ECANCELED in a victim nobody cancelled "
             "(%d workers)", workers);
    CHECK_EQ(atomic_load(&X.double_hold), 0, "times a mutex had two holders (%d workers)",
             workers);
    CHECK_EQ(X.lm_plain, atomic_load(&X.lm_ok), "lock mutex: plain count against locked "
             "sections (%d workers)", workers);
    CHECK_EQ(X.cm_plain, atomic_load(&X.cm_ok), "cond mutex: plain count against locked "
             "sections (%d workers)", workers);
    CHECK_EQ(atomic_load(&X.sem_got), atomic_load(&X.sem_released), "semaphore units "
             "acquired or left against units released (%d workers)", workers);
    uint32_t n = atomic_load(&X.next_val);
    mn_check_ledger(X.sent, X.got, n < MAXV ? n : MAXV, workers);
    long canceled = 0, woken = 0;
    for (int k = 0; k < K_COUNT; k++) {
        canceled += atomic_load(&X.outcome[k][2]);
        woken += atomic_load(&X.outcome[k][0]);
    }
    /* The storm must have been one: cancels and wakes both happened. */
    CHECK_TRUE(canceled > 0 && woken > 0, "cancelled waits (%ld) and completed ones (%ld)",
               canceled, woken);
    long timeouts = 0;
    for (int k = 0; k < K_COUNT; k++)
        timeouts += atomic_load(&X.outcome[k][1]);
    print_message("%d workers: %ld waits completed, %ld timed out, %ld cancelled (%ld of "
                  "them cond waits that relocked), %u values\n", workers, woken, timeouts,
                  canceled, atomic_load(&X.cm_canceled), n);
}

/* Storms are short (the cancellers' sweep ends them): several per test. */
#define STORMS (SP_TEST_TSAN ? 2 : 8)

static void test_cancel_storm_2(void **state)
{
    for (int i = 0; i < STORMS; i++)
        run_storm(2);
}

static void test_cancel_storm_4(void **state)
{
    for (int i = 0; i < STORMS; i++)
        run_storm(4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_storm_2),
        cmocka_unit_test(test_cancel_storm_4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
