/* sp_mutex: mutual exclusion across coroutines that yield inside the
 * critical section, FIFO hand-off, trylock, and the misuse that aborts. */
#include "sync_test.h"

static sp_mutex mu = SP_MUTEX_INIT;
static long counter;
static int inside, max_inside;

#define WORKERS 200
#define ROUNDS 200

static void *worker(void *arg)
{
    for (int i = 0; i < ROUNDS; i++) {
        if (sp_mutex_lock(&mu, -1) != 0)
            return IP(-1);
        if (++inside > max_inside)
            max_inside = inside;
        /* A read-yield-write race that only the mutex prevents. */
        long c = counter;
        sp_yield();
        if (i % 3 == 0)
            sp_yield();
        counter = c + 1;
        inside--;
        sp_mutex_unlock(&mu);
        if (i % 5 == 0)
            sp_yield();
    }
    return NULL;
}

static void test_mutual_exclusion(void **state)
{
    counter = 0;
    inside = max_inside = 0;
    sp_co *co[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        co[i] = sp_spawn(worker, NULL, NULL);
    for (int i = 0; i < WORKERS; i++) {
        void *r;
        sp_join(co[i], &r);
        CHECK_EQ(PI(r), 0, "worker %d's result", i);
    }
    CHECK_EQ(counter, WORKERS * ROUNDS, "increments counted under the mutex");
    CHECK_EQ(max_inside, 1, "most coroutines inside the critical section at once");
    CHECK_OK(sp_mutex_trylock(&mu), "the mutex is free at the end");
    sp_mutex_unlock(&mu);
}

static int order[8], order_n;

static void *locker(void *arg)
{
    if (sp_mutex_lock(&mu, -1) != 0)
        return IP(-1);
    order[order_n++] = (int)PI(arg);
    sp_mutex_unlock(&mu);
    return NULL;
}

static void test_fifo_hand_off(void **state)
{
    order_n = 0;
    CHECK_OK(sp_mutex_lock(&mu, -1), "the root locks");
    sp_co *co[8];
    for (int i = 0; i < 8; i++)
        co[i] = sp_spawn(locker, IP(i), NULL);
    run_ready(); /* all eight park, in order */
    sp_mutex_unlock(&mu);
    /* The root comes back for it at once, but the lock was handed to the
     * first waiter: the root must queue behind all eight. */
    CHECK_FAILS(sp_mutex_trylock(&mu), EBUSY, "trylock right after a hand-off");
    CHECK_OK(sp_mutex_lock(&mu, -1), "the root locks again, last");
    CHECK_EQ(order_n, 8, "waiters that had the lock before the root's second lock");
    for (int i = 0; i < 8; i++)
        CHECK_EQ(order[i], i, "waiter that got the lock %d-th", i);
    sp_mutex_unlock(&mu);
    for (int i = 0; i < 8; i++)
        sp_join(co[i], NULL);
}

static void test_trylock_and_relock(void **state)
{
    sp_mutex m;
    sp_mutex_init(&m);
    CHECK_OK(sp_mutex_trylock(&m), "trylock of a free mutex");
    CHECK_FAILS(sp_mutex_trylock(&m), EBUSY, "trylock by the holder");
    CHECK_FAILS(sp_mutex_lock(&m, -1), EDEADLK, "lock by the holder");
    sp_mutex_unlock(&m);
    CHECK_OK(sp_mutex_lock(&m, 0), "lock, deadline 0, free mutex");
    sp_mutex_unlock(&m);
}

static void *holds(void *arg)
{
    sp_mutex_lock(arg, -1);
    return NULL;
}

static void unlock_not_owner(void *arg)
{
    static sp_mutex m = SP_MUTEX_INIT;
    sp_join(sp_spawn(holds, &m, NULL), NULL); /* ends holding it */
    sp_mutex_unlock(&m);
}

static void unlock_unlocked(void *arg)
{
    sp_mutex m = SP_MUTEX_INIT;
    sp_mutex_unlock(&m);
}

static void expect_abort(void (*fn)(void *), const char *what, const char *needle)
{
    int status;
    char err[512];
    assert_int_equal(sp_test_child(fn, NULL, &status, err, sizeof err), 0);
    CHECK_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
               "%s should abort; status %#x, stderr '%s'", what, status, err);
    CHECK_TRUE(strstr(err, needle) != NULL, "%s: the message should say '%s': '%s'", what,
               needle, err);
}

static void test_misuse_aborts(void **state)
{
    expect_abort(unlock_not_owner, "unlock by a coroutine that does not hold the mutex",
                 "not by the caller");
    expect_abort(unlock_unlocked, "unlock of a mutex nobody holds", "is not locked");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_exclusion),
        cmocka_unit_test(test_fifo_hand_off),
        cmocka_unit_test(test_trylock_and_relock),
        cmocka_unit_test(test_misuse_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
