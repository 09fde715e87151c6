/* Mutex, condition variable and semaphore across M:N workers:
 *  - a plain counter incremented under sp_mutex by coroutines on every
 *    worker, yielding inside the critical section (so another coroutine
 *    runs while the mutex is held), ends exact, and no two coroutines are
 *    ever inside at once;
 *  - a bounded queue under a mutex and two conditions (producers wait
 *    while it is full, consumers while it is empty, some with deadlines)
 *    delivers every item exactly once;
 *  - a semaphore of K units never lets more than K coroutines in at once,
 *    and has all K back at the end.
 * The coroutines are spawned on every worker (half of them pinned there,
 * half free to be stolen), so the primitives really are contended from
 * several threads. */
#include "mn_test.h"

/* ---- the counter ---- */

#define CO_N 16
#define INCS MN_N(4000)

static struct {
    sp_mutex mu;
    long counter;          /* plain: only the mutex guards it */
    _Atomic int inside, overlap;
    _Atomic long timeouts;
} C;

/* A lock deadline: mostly generous (a lock that takes 5 seconds is
 * stuck: the test fails rather than hangs), sometimes a few microseconds,
 * so that timeouts race with unlocks handing the mutex over. */
static int64_t lock_deadline(uint32_t *rng)
{
    uint32_t r = mn_rand(rng);
    return r % 4 == 0 ? sp_now() + (int64_t)(r >> 8) % 50000 : sp_deadline_ms(5000);
}

static void *incrementer(void *arg)
{
    uint32_t rng = mn_seed((uint32_t)PI(arg));
    uint64_t local = 0;
    for (int i = 0; i < INCS; i++) {
        int64_t dl = lock_deadline(&rng);
        if (sp_mutex_lock(&C.mu, dl) != 0) {
            if (errno != ETIMEDOUT || dl > sp_now())
                return IP(-errno);
            atomic_fetch_add(&C.timeouts, 1);
            i--; /* a timed-out lock is no increment: again */
            continue;
        }
        if (atomic_fetch_add_explicit(&C.inside, 1, memory_order_relaxed) != 0)
            atomic_fetch_add(&C.overlap, 1);
        long c = C.counter;
        if (mn_rand(&rng) % 4 == 0)
            sp_yield(); /* another coroutine runs (perhaps here) while we hold it */
        C.counter = c + 1;
        atomic_fetch_sub_explicit(&C.inside, 1, memory_order_relaxed);
        sp_mutex_unlock(&C.mu);
        mn_note(&local);
        if (mn_rand(&rng) % 8 == 0)
            sp_yield();
    }
    /* trylock too: it takes the mutex or says EBUSY, never a second
     * holder. */
    for (int i = 0; i < 100; i++)
        if (sp_mutex_trylock(&C.mu) == 0) {
            if (atomic_fetch_add_explicit(&C.inside, 1, memory_order_relaxed) != 0)
                atomic_fetch_add(&C.overlap, 1);
            long c = C.counter;
            sp_yield();
            C.counter = c;
            atomic_fetch_sub_explicit(&C.inside, 1, memory_order_relaxed);
            sp_mutex_unlock(&C.mu);
        } else if (errno != EBUSY) {
            return IP(-1000 - errno);
        }
    return NULL;
}

static void counter_each(int slot, int nslots)
{
    spawn_share(incrementer, CO_N, slot, nslots);
}

static void *counter_main(void *arg)
{
    sp_mutex_init(&C.mu);
    atomic_store(&mn_seen, 0);
    if (!mn_all_workers_up((int)PI(arg), counter_each))
        return IP(-100);
    long bad = join_spawned();
    /* Free again: no unlock handed it to a waiter that had timed out. */
    if (sp_mutex_trylock(&C.mu) != 0)
        return IP(-200);
    sp_mutex_unlock(&C.mu);
    return IP(bad);
}

static void run_counter(int workers)
{
    memset(&C, 0, sizeof C);
    void *r = mn_run(counter_main, IP(workers), workers);
    CHECK_EQ(PI(r), 0, "incrementers that failed to lock, unlock or join (%d workers; -100: "
             "the workers did not all start; -200: the mutex is still held at the end)",
             workers);
    CHECK_EQ(atomic_load(&C.overlap), 0, "times two coroutines were inside the mutex at "
             "once (%d workers)", workers);
    CHECK_EQ(C.counter, (long)CO_N * INCS, "the counter after %d x %d locked increments "
             "(%d workers)", CO_N, INCS, workers);
    CHECK_EQ(mn_popcount(atomic_load(&mn_seen)), workers, "workers that ran incrementers "
             "(mask %#llx)", (unsigned long long)atomic_load(&mn_seen));
}

static void test_counter_2(void **state) { run_counter(2); }
static void test_counter_4(void **state) { run_counter(4); }

/* ---- the bounded queue ---- */

#define QCAP 8
#define PRODUCERS 4
#define CONSUMERS 4
#define ITEMS MN_N(40000) /* in all */

static struct {
    sp_mutex mu;
    sp_cond not_full, not_empty;
    long buf[QCAP];
    int head, len;
    int producers_left;
    uint8_t *got;           /* per item: times a consumer took it */
    long taken[CONSUMERS];
    long timeouts;          /* cond waits with a deadline that passed */
} Q;

static void *producer(void *arg)
{
    int p = (int)PI(arg) - CONSUMERS;
    for (long v = p; v < ITEMS; v += PRODUCERS) {
        sp_mutex_lock(&Q.mu, -1);
        while (Q.len == QCAP)
            sp_cond_wait(&Q.not_full, &Q.mu, -1);
        Q.buf[(Q.head + Q.len) % QCAP] = v;
        Q.len++;
        /* Sometimes a broadcast: every consumer wakes, most find nothing. */
        if (v % 7 == 0)
            sp_cond_broadcast(&Q.not_empty);
        else
            sp_cond_signal(&Q.not_empty);
        sp_mutex_unlock(&Q.mu);
    }
    sp_mutex_lock(&Q.mu, -1);
    if (--Q.producers_left == 0)
        sp_cond_broadcast(&Q.not_empty);
    sp_mutex_unlock(&Q.mu);
    return NULL;
}

static void *consumer(void *arg)
{
    int c = (int)PI(arg);
    sp_mutex_lock(&Q.mu, -1);
    for (;;) {
        while (Q.len == 0 && Q.producers_left > 0) {
            /* Half the consumers wait with a short deadline: timeouts race
             * with signals from other workers. */
            int64_t dl = c % 2 ? sp_deadline_ms(1) : -1;
            if (sp_cond_wait(&Q.not_empty, &Q.mu, dl) != 0 && errno == ETIMEDOUT)
                Q.timeouts++;
        }
        if (Q.len == 0)
            break;
        long v = Q.buf[Q.head];
        Q.head = (Q.head + 1) % QCAP;
        Q.len--;
        sp_cond_signal(&Q.not_full);
        if (v >= 0 && v < ITEMS && Q.got[v] < 255)
            Q.got[v]++;
        Q.taken[c]++;
        if (Q.taken[c] % 16 == 0) {
            /* Let go for a while: the others must get in. */
            sp_mutex_unlock(&Q.mu);
            sp_yield();
            sp_mutex_lock(&Q.mu, -1);
        }
    }
    sp_mutex_unlock(&Q.mu);
    return NULL;
}

static void *queue_role(void *arg)
{
    return (int)PI(arg) < CONSUMERS ? consumer(arg) : producer(arg);
}

static void queue_each(int slot, int nslots)
{
    spawn_share(queue_role, CONSUMERS + PRODUCERS, slot, nslots);
}

static void *queue_main(void *arg)
{
    sp_mutex_init(&Q.mu);
    sp_cond_init(&Q.not_full);
    sp_cond_init(&Q.not_empty);
    Q.producers_left = PRODUCERS;
    if (!mn_all_workers_up((int)PI(arg), queue_each))
        return IP(-100);
    return IP(join_spawned());
}

static void run_queue(int workers)
{
    memset(&Q, 0, sizeof Q);
    Q.got = calloc(ITEMS, 1);
    assert_non_null(Q.got);
    void *r = mn_run(queue_main, IP(workers), workers);
    CHECK_EQ(PI(r), 0, "producers and consumers that failed (%d workers)", workers);
    long missing = 0, dup = 0, taken = 0;
    for (long i = 0; i < ITEMS; i++) {
        missing += Q.got[i] == 0;
        dup += Q.got[i] > 1;
    }
    for (int c = 0; c < CONSUMERS; c++)
        taken += Q.taken[c];
    free(Q.got);
    CHECK_EQ(missing, 0, "items no consumer took (%d workers)", workers);
    CHECK_EQ(dup, 0, "items taken twice (%d workers)", workers);
    CHECK_EQ(taken, ITEMS, "items taken in all (%d workers)", workers);
    CHECK_EQ(Q.len, 0, "items left in the queue (%d workers)", workers);
}

static void test_cond_queue_2(void **state) { run_queue(2); }
static void test_cond_queue_4(void **state) { run_queue(4); }

/* ---- the semaphore ---- */

#define UNITS 3
#define SEM_CO 32
#define SEM_ROUNDS MN_N(2000)

static struct {
    sp_sem sem;
    _Atomic int inside, max_inside;
    _Atomic long entries, timeouts;
} S;

static void *sem_user(void *arg)
{
    uint32_t rng = mn_seed((uint32_t)PI(arg));
    for (int i = 0; i < SEM_ROUNDS; i++) {
        /* Some acquires with a deadline that may pass: a waiter that timed
         * out must neither keep nor lose the unit a release hands over. */
        int64_t dl = lock_deadline(&rng);
        if (sp_sem_acquire(&S.sem, dl) != 0) {
            if (errno != ETIMEDOUT || dl > sp_now())
                return IP(-errno);
            atomic_fetch_add(&S.timeouts, 1);
            continue;
        }
        int in = atomic_fetch_add(&S.inside, 1) + 1;
        int max = atomic_load(&S.max_inside);
        while (in > max && !atomic_compare_exchange_weak(&S.max_inside, &max, in))
            ;
        atomic_fetch_add(&S.entries, 1);
        if (mn_rand(&rng) % 2)
            sp_yield();
        atomic_fetch_sub(&S.inside, 1);
        if (sp_sem_release(&S.sem) != 0)
            return IP(-1000);
    }
    return NULL;
}

static void sem_each(int slot, int nslots)
{
    spawn_share(sem_user, SEM_CO, slot, nslots);
}

static void *sem_main(void *arg)
{
    sp_sem_init(&S.sem, UNITS);
    if (!mn_all_workers_up((int)PI(arg), sem_each))
        return IP(-100000);
    long bad = join_spawned();
    /* Every unit is back: exactly UNITS can be taken without waiting. */
    long units = 0;
    while (sp_sem_acquire(&S.sem, 0) == 0)
        units++;
    return IP(bad * 1000 + units);
}

static void run_sem(int workers)
{
    memset(&S, 0, sizeof S);
    void *r = mn_run(sem_main, IP(workers), workers);
    CHECK_EQ(PI(r) / 1000, 0, "semaphore users that failed (%d workers)", workers);
    CHECK_EQ(PI(r) % 1000, UNITS, "units left once every user is done (%d workers)", workers);
    CHECK_TRUE(atomic_load(&S.max_inside) <= UNITS, "at most %d inside at once, saw %d "
               "(%d workers)", UNITS, atomic_load(&S.max_inside), workers);
    CHECK_EQ(atomic_load(&S.entries) + atomic_load(&S.timeouts), (long)SEM_CO * SEM_ROUNDS,
             "entries plus timeouts (%d workers)", workers);
}

static void test_sem_2(void **state) { run_sem(2); }
static void test_sem_4(void **state) { run_sem(4); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_2), cmocka_unit_test(test_counter_4),
        cmocka_unit_test(test_cond_queue_2), cmocka_unit_test(test_cond_queue_4),
        cmocka_unit_test(test_sem_2), cmocka_unit_test(test_sem_4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
