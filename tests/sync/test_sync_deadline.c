/* Deadlines on every blocking sync call: a passed deadline ends the wait
 * with ETIMEDOUT no earlier than asked, from a coroutine and from the
 * root, leaving nothing behind; deadline 0 fails at once with EAGAIN. */
#include "blockers.h"

#define WAIT_MS 15

static void *timed(void *arg)
{
    int kind = (int)PI(arg);
    int64_t t0 = sp_now();
    int rc = block(kind, sp_now() + WAIT_MS * 1000000LL);
    int64_t took = sp_now() - t0;
    if (rc != -ETIMEDOUT)
        return IP(rc == 0 ? -1000 : rc);
    return IP(took >= WAIT_MS * 1000000LL ? 1 : -2000);
}

static void test_deadline_in_coroutine(void **state)
{
    b_setup();
    for (int k = 0; k < B_COUNT; k++) {
        void *r;
        sp_join(sp_spawn(timed, IP(k), NULL), &r);
        CHECK_EQ(PI(r), 1, "%s with a %d ms deadline (1: ETIMEDOUT in time; -2000: too "
                 "early; -1000: succeeded; else -errno)", b_name[k], WAIT_MS);
        CHECK_TRUE(unlinked(k), "%s: the primitive is free of the timed-out waiter", b_name[k]);
    }
    b_teardown();
}

static void test_deadline_in_root(void **state)
{
    b_setup();
    for (int k = 0; k < B_COUNT; k++) {
        CHECK_EQ(PI(timed(IP(k))), 1, "%s from the root with a %d ms deadline", b_name[k],
                 WAIT_MS);
        CHECK_TRUE(unlinked(k), "%s from the root: the primitive is free of the waiter",
                   b_name[k]);
    }
    b_teardown();
}

static void test_deadline_zero_and_past(void **state)
{
    b_setup();
    for (int k = 0; k < B_COUNT; k++) {
        CHECK_EQ(block(k, 0), -EAGAIN, "%s with deadline 0 (-errno)", b_name[k]);
        CHECK_TRUE(unlinked(k), "%s with deadline 0 left nothing behind", b_name[k]);
        CHECK_EQ(block(k, sp_now() - 1), -ETIMEDOUT, "%s with a passed deadline (-errno)",
                 b_name[k]);
        CHECK_TRUE(unlinked(k), "%s with a passed deadline left nothing behind", b_name[k]);
    }
    b_teardown();
}

static void *ready_later(void *arg)
{
    sp_sleep_ms(5);
    int v = 99;
    return IP(sp_chan_send(arg, &v, -1));
}

static void test_success_before_deadline(void **state)
{
    /* A value that comes before the deadline wins, and its timer is gone:
     * the wait does not end a second time when the deadline passes. */
    sp_chan *ch = sp_chan_make(sizeof(int), 0);
    sp_co *co = sp_spawn(ready_later, ch, NULL);
    int v = 0;
    CHECK_OK(sp_chan_recv(ch, &v, sp_deadline_ms(1000)), "recv with a value in 5 of 1000 ms");
    CHECK_EQ(v, 99, "value");
    sp_join(co, NULL);
    CHECK_OK(sp_sleep_ms(2), "a sleep after it");
    sp_chan_free(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_in_coroutine),
        cmocka_unit_test(test_deadline_in_root),
        cmocka_unit_test(test_deadline_zero_and_past),
        cmocka_unit_test(test_success_before_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
