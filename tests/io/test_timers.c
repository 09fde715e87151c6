/* Timers: zero, huge and repeated timeouts; firing order; never twice. */
#include "sp_test.h"
#include "core/internal.h"

#define N 2000
static int order[N], norder, fired[N];
static int64_t deadlines[N], called_at[N];

static void *sleeper(void *arg)
{
    int i = (int)PI(arg);
    called_at[i] = sp_now();
    if (sp_sleep_until(deadlines[i]) != 0)
        return IP(-1);
    fired[i]++;
    order[norder++] = i;
    return NULL;
}

/* One run with the deadlines `offset` ns and up from after the spawns;
 * returns how many sleepers were asleep before their deadline. */
static int fire_in_order(int64_t offset)
{
    sp_co *co[N];
    norder = 0;
    for (int i = 0; i < N; i++) {
        fired[i] = 0;
        co[i] = sp_spawn(sleeper, IP(i), NULL);
    }
    /* No sleeper has run yet (nothing yielded): deadlines count from now,
     * however slow the spawns were.  A scrambled permutation, with ties. */
    int64_t base = sp_now() + offset;
    for (int i = 0; i < N; i++)
        deadlines[i] = base + (int64_t)((i * 7919) % 500) * 100000;
    for (int i = 0; i < N; i++)
        sp_join(co[i], NULL);
    assert_int_equal(norder, N);
    for (int i = 0; i < N; i++)
        if (fired[i] != 1)
            fail_msg("sleeper %d woke %d times, expected once", i, fired[i]);
    /* The order is checked among the sleepers that were asleep before their
     * deadline; on a very slow run (sanitizers, a loaded machine) one that
     * started late may rightly wake late. */
    int counted = 0;
    int64_t last = INT64_MIN;
    for (int k = 0; k < N; k++) {
        int i = order[k];
        if (called_at[i] >= deadlines[i])
            continue;
        counted++;
        if (deadlines[i] < last)
            fail_msg("wake %d (deadline %lld) came after a later deadline", k,
                     (long long)deadlines[i]);
        last = deadlines[i];
    }
    return counted;
}

static void test_fire_in_deadline_order(void **state)
{
    /* Most sleepers must count, or the order was hardly checked.  Starting
     * them all may take longer than the first offset on a slow machine:
     * then again, with the deadlines further out. */
    int counted = 0;
    int64_t offset = 20 * 1000000;
    for (int run = 0; run < 4; run++, offset *= 5) {
        counted = fire_in_order(offset);
        if (counted >= N / 2)
            return;
    }
    fail_msg("only %d of %d sleepers were asleep before their deadline, even %lld ms out",
             counted, N, (long long)(offset / 5 / 1000000));
}

static void test_zero_and_past_deadlines(void **state)
{
    int64_t t0 = sp_now();
    assert_int_equal(sp_sleep_ns(0), 0);
    assert_int_equal(sp_sleep_ms(-5), 0);
    assert_int_equal(sp_sleep_until(t0 - 1000), 0);
    assert_int_equal(sp_sleep_until(-1), -1);
    assert_int_equal(errno, EINVAL);
}

/* Regression: a coroutine whose own expired deadline is found by the poll
 * made while it parks is readied before it leaves; it must carry on where
 * it is, not be resumed from an older save point.  Sleeping from varying
 * call depths makes an older save point a different frame, and the poll
 * counter is primed so the poll happens inside the park. */
static int sleep_at_depth(int depth)
{
    volatile int mark = depth * 31 + 7;
    int r;
    if (depth > 0)
        r = sleep_at_depth(depth - 1);
    else {
        /* The next switch polls: the park below finds its own deadline. */
        sp__sched()->since_poll = SP__POLL_EVERY - 1;
        r = sp_sleep_until(sp_now() - 1) == 0 ? 0 : 1000;
    }
    return r + (mark == depth * 31 + 7 ? 0 : 1);
}

static void test_expired_while_parking(void **state)
{
    for (int i = 0; i < 1000; i++)
        if (sleep_at_depth((i * 5) % 9) != 0)
            fail_msg("sleep %d came back to the wrong frame", i);
}

static void test_sleep_lasts_at_least(void **state)
{
    for (int i = 0; i < 20; i++) {
        int64_t t0 = sp_now();
        assert_int_equal(sp_sleep_ns(300000), 0);
        if (sp_now() - t0 < 300000)
            fail_msg("woke %lld ns early", (long long)(300000 - (sp_now() - t0)));
    }
}

static int huge_woke;
static void *huge_sleeper(void *arg)
{
    if (sp_sleep_ms(INT64_C(1) << 40) == 0) /* ~35 years */
        huge_woke = 1;
    return NULL;
}

static void test_huge_timeout_does_not_fire(void **state)
{
    sp_co *co = sp_spawn(huge_sleeper, NULL, NULL);
    sp_sleep_ms(20);
    assert_int_equal(huge_woke, 0);
    sp_cancel(co);
    sp_join(co, NULL);
    assert_int_equal(huge_woke, 0);
}

static void *repeat(void *arg)
{
    int *count = arg;
    for (int i = 0; i < 100; i++) {
        sp_sleep_ns(10000);
        (*count)++;
    }
    return NULL;
}

static void test_repeated_short_sleeps(void **state)
{
    int a = 0, b = 0;
    sp_co *x = sp_spawn(repeat, &a, NULL), *y = sp_spawn(repeat, &b, NULL);
    sp_join(x, NULL);
    sp_join(y, NULL);
    assert_int_equal(a, 100);
    assert_int_equal(b, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fire_in_deadline_order),
        cmocka_unit_test(test_zero_and_past_deadlines),
        cmocka_unit_test(test_expired_while_parking),
        cmocka_unit_test(test_sleep_lasts_at_least),
        cmocka_unit_test(test_huge_timeout_does_not_fire),
        cmocka_unit_test(test_repeated_short_sleeps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
