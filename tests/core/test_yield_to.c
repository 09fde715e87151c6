/* Symmetric transfer: the producer/consumer of the classic example, and the
 * errors of sp_yield_to. */
#include "sp_test.h"

#define QCAP 8
#define TOTAL 1000
static int queue[QCAP], qlen;
static sp_co *producer_co, *consumer_co;
static long consumed_sum;
static int produced, consumed, handoffs;

static void *producer(void *arg)
{
    while (produced < TOTAL) {
        while (qlen < QCAP && produced < TOTAL)
            queue[qlen++] = ++produced;
        handoffs++;
        if (sp_yield_to(consumer_co) != 0)
            return IP(-1);
    }
    return IP(0);
}

static void *consumer(void *arg)
{
    while (consumed < TOTAL) {
        for (int i = 0; i < qlen; i++) {
            consumed_sum += queue[i];
            consumed++;
        }
        qlen = 0;
        if (consumed < TOTAL && sp_yield_to(producer_co) != 0)
            return IP(-1);
    }
    return IP(0);
}

static void test_producer_consumer(void **state)
{
    consumer_co = sp_spawn(consumer, NULL, NULL);
    producer_co = sp_spawn(producer, NULL, NULL);
    void *r1, *r2;
    assert_int_equal(sp_join(producer_co, &r1), 0);
    assert_int_equal(sp_join(consumer_co, &r2), 0);
    assert_int_equal(PI(r1), 0);
    assert_int_equal(PI(r2), 0);
    assert_int_equal(consumed, TOTAL);
    assert_int_equal(consumed_sum, (long)TOTAL * (TOTAL + 1) / 2);
    assert_int_equal(handoffs, TOTAL / QCAP);
}

static void *noop(void *arg) { return arg; }

static void test_yield_to_errors(void **state)
{
    errno = 0;
    assert_int_equal(sp_yield_to(sp_self()), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sp_yield_to(NULL), -1);
    sp_co_attr a = {.suspended = 1};
    sp_co *s = sp_spawn(noop, NULL, &a);
    errno = 0;
    assert_int_equal(sp_yield_to(s), -1); /* suspended, not ready */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sp_resume(s), 1);
    assert_int_equal(sp_join(s, NULL), 0);
}

static int order[16], norder;
static void *mark(void *arg)
{
    order[norder++] = (int)PI(arg);
    return NULL;
}

static void test_yield_to_jumps_the_queue(void **state)
{
    norder = 0;
    sp_co *a = sp_spawn(mark, IP(1), NULL);
    sp_co *b = sp_spawn(mark, IP(2), NULL);
    sp_co *c = sp_spawn(mark, IP(3), NULL);
    assert_int_equal(sp_yield_to(c), 0); /* c first, then a and b in order */
    sp_join(a, NULL);
    sp_join(b, NULL);
    sp_join(c, NULL);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 2);
}

/* The run queue after a yield_to from each place in it: the target
 * leaves from the front, the middle or the back, the others keep their
 * order and the yielder goes behind them.  Each marker yields once before
 * it ends, so the queue is walked twice and a broken link would drop or
 * repeat one. */
static void *mark_twice(void *arg)
{
    order[norder++] = (int)PI(arg);
    sp_yield();
    order[norder++] = (int)PI(arg);
    return NULL;
}

static void test_yield_to_from_every_place(void **state)
{
    static const struct {
        int target;
        int expect[10];
    } cases[] = {
        {1, {1, 2, 3, 4, 0, 1, 2, 3, 4, 0}}, /* the front */
        {2, {2, 1, 3, 4, 0, 2, 1, 3, 4, 0}}, /* the middle */
        {4, {4, 1, 2, 3, 0, 4, 1, 2, 3, 0}}, /* the back */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sp_co *co[5];
        norder = 0;
        for (int i = 1; i <= 4; i++)
            co[i] = sp_spawn(mark_twice, IP(i), NULL);
        assert_int_equal(sp_yield_to(co[cases[c].target]), 0);
        order[norder++] = 0; /* the yielder, back after the four */
        sp_yield();
        order[norder++] = 0;
        for (int i = 1; i <= 4; i++)
            assert_int_equal(sp_join(co[i], NULL), 0);
        assert_int_equal(norder, 10);
        assert_memory_equal(order, cases[c].expect, sizeof cases[c].expect);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_consumer),
        cmocka_unit_test(test_yield_to_errors),
        cmocka_unit_test(test_yield_to_jumps_the_queue),
        cmocka_unit_test(test_yield_to_from_every_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
