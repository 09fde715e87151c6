/* sp_cond: signal wakes the longest waiter, broadcast wakes them all, the
 * mutex is held again on every return, and a bounded queue built on two
 * conditions moves every item once. */
#include "sync_test.h"

static sp_mutex mu = SP_MUTEX_INIT;
static sp_cond cv = SP_COND_INIT;
static int go_count, woke[8], woke_n;

static void *waiter(void *arg)
{
    sp_mutex_lock(&mu, -1);
    int seen = go_count;
    while (go_count == seen)
        if (sp_cond_wait(&cv, &mu, -1) != 0)
            break;
    /* Back with the mutex: a trylock by the owner must say EBUSY. */
    int held = sp_mutex_trylock(&mu) == -1 && errno == EBUSY;
    woke[woke_n++] = (int)PI(arg);
    sp_mutex_unlock(&mu);
    return IP(held);
}

static void test_signal_wakes_one_in_order(void **state)
{
    woke_n = 0;
    sp_co *co[4];
    for (int i = 0; i < 4; i++)
        co[i] = sp_spawn(waiter, IP(i), NULL);
    run_ready();
    for (int i = 0; i < 4; i++) {
        sp_mutex_lock(&mu, -1);
        go_count++;
        sp_cond_signal(&cv);
        sp_mutex_unlock(&mu);
        run_ready();
        CHECK_EQ(woke_n, i + 1, "waiters woken after %d signals", i + 1);
        CHECK_EQ(woke[i], i, "waiter woken by signal %d", i);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        sp_join(co[i], &r);
        CHECK_EQ(PI(r), 1, "waiter %d held the mutex when sp_cond_wait returned", i);
    }
    sp_cond_signal(&cv); /* nobody waits: nothing happens */
}

static void test_broadcast_wakes_all(void **state)
{
    woke_n = 0;
    sp_co *co[8];
    for (int i = 0; i < 8; i++)
        co[i] = sp_spawn(waiter, IP(i), NULL);
    run_ready();
    CHECK_EQ(woke_n, 0, "waiters awake before the broadcast");
    sp_mutex_lock(&mu, -1);
    go_count++;
    sp_cond_broadcast(&cv);
    sp_mutex_unlock(&mu);
    for (int i = 0; i < 8; i++) {
        void *r;
        sp_join(co[i], &r);
        CHECK_EQ(PI(r), 1, "waiter %d held the mutex on return", i);
    }
    CHECK_EQ(woke_n, 8, "waiters woken by one broadcast");
}

/* A bounded queue of 4 ints: the textbook two-condition monitor. */
#define QCAP 4
static int q[QCAP], qhead, qlen;
static sp_cond not_full = SP_COND_INIT, not_empty = SP_COND_INIT;

static void *qproducer(void *arg)
{
    for (int i = 1; i <= 1000; i++) {
        sp_mutex_lock(&mu, -1);
        while (qlen == QCAP)
            sp_cond_wait(&not_full, &mu, -1);
        q[(qhead + qlen++) % QCAP] = i;
        sp_cond_signal(&not_empty);
        sp_mutex_unlock(&mu);
    }
    return NULL;
}

static void *qconsumer(void *arg)
{
    long sum = 0;
    for (int i = 0; i < 1000; i++) {
        sp_mutex_lock(&mu, -1);
        while (qlen == 0)
            sp_cond_wait(&not_empty, &mu, -1);
        sum += q[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        sp_cond_signal(&not_full);
        sp_mutex_unlock(&mu);
        if (i % 7 == 0)
            sp_yield();
    }
    return IP(sum);
}

static void test_bounded_queue(void **state)
{
    qhead = qlen = 0;
    sp_co *p[3], *c[3];
    for (int i = 0; i < 3; i++) {
        p[i] = sp_spawn(qproducer, NULL, NULL);
        c[i] = sp_spawn(qconsumer, NULL, NULL);
    }
    long sum = 0;
    for (int i = 0; i < 3; i++) {
        void *r;
        sp_join(p[i], NULL);
        sp_join(c[i], &r);
        sum += PI(r);
    }
    CHECK_EQ(sum, 3L * 1000 * 1001 / 2, "sum of the items the consumers took");
    CHECK_EQ(qlen, 0, "items left in the queue");
}

static void wait_unlocked(void *arg)
{
    sp_mutex m = SP_MUTEX_INIT;
    sp_cond c = SP_COND_INIT;
    sp_cond_wait(&c, &m, -1);
}

static void test_wait_without_mutex_aborts(void **state)
{
    int status;
    char err[512];
    assert_int_equal(sp_test_child(wait_unlocked, NULL, &status, err, sizeof err), 0);
    CHECK_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
               "sp_cond_wait without the mutex should abort; status %#x", status);
    CHECK_TRUE(strstr(err, "sp_cond_wait") != NULL,
               "the message should name sp_cond_wait: '%s'", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_wakes_one_in_order),
        cmocka_unit_test(test_broadcast_wakes_all),
        cmocka_unit_test(test_bounded_queue),
        cmocka_unit_test(test_wait_without_mutex_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
