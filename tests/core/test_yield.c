/* sp_yield is round-robin in FIFO order, in direct and in star mode. */
#include "sp_test.h"

#define NCO 5
#define ROUNDS 20
static int trace[NCO * ROUNDS];
static int ntrace;

static void *worker(void *arg)
{
    for (int r = 0; r < ROUNDS; r++) {
        trace[ntrace++] = (int)PI(arg);
        sp_yield();
    }
    return NULL;
}

static void test_round_robin_order(void **state)
{
    sp_co *co[NCO];
    ntrace = 0;
    for (int i = 0; i < NCO; i++)
        co[i] = sp_spawn(worker, IP(i), NULL);
    for (int i = 0; i < NCO; i++)
        assert_int_equal(sp_join(co[i], NULL), 0);
    assert_int_equal(ntrace, NCO * ROUNDS);
    for (int k = 0; k < NCO * ROUNDS; k++)
        if (trace[k] != k % NCO)
            fail_msg("step %d ran coroutine %d, expected %d (FIFO order)", k,
                     trace[k], k % NCO);
}

static void test_yield_alone_returns(void **state)
{
    /* Nothing else is ready: yield is a no-op and must not hang. */
    for (int i = 0; i < 1000; i++)
        sp_yield();
    assert_true(1);
}

static void *counter(void *arg)
{
    long *n = arg;
    for (int i = 0; i < 100000; i++) {
        (*n)++;
        sp_yield();
    }
    return NULL;
}

static void test_many_switches(void **state)
{
    long n = 0;
    sp_co *a = sp_spawn(counter, &n, NULL), *b = sp_spawn(counter, &n, NULL);
    sp_join(a, NULL);
    sp_join(b, NULL);
    assert_int_equal(n, 200000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_order),
        cmocka_unit_test(test_yield_alone_returns),
        cmocka_unit_test(test_many_switches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
