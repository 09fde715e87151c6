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

static int order[4], norder;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_consumer),
        cmocka_unit_test(test_yield_to_errors),
        cmocka_unit_test(test_yield_to_jumps_the_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
