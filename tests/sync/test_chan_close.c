/* Closing a channel: receivers drain the buffer and then get EPIPE, sends
 * fail with EPIPE, and every parked sender and receiver wakes with EPIPE. */
#include "sync_test.h"

static sp_chan *ch;

static void test_drain_then_epipe(void **state)
{
    ch = sp_chan_make(sizeof(int), 3);
    for (int i = 0; i < 3; i++)
        sp_chan_send(ch, &i, -1);
    CHECK_OK(sp_chan_close(ch), "close");
    int v = 5;
    CHECK_FAILS(sp_chan_send(ch, &v, -1), EPIPE, "send on a closed channel");
    for (int i = 0; i < 3; i++) {
        CHECK_OK(sp_chan_recv(ch, &v, -1), "recv %d of the buffered values after close", i);
        CHECK_EQ(v, i, "buffered value %d", i);
    }
    CHECK_FAILS(sp_chan_recv(ch, &v, -1), EPIPE, "recv on a closed, drained channel");
    CHECK_FAILS(sp_chan_recv(ch, &v, 0), EPIPE, "recv with deadline 0 on it");
    CHECK_FAILS(sp_chan_close(ch), EPIPE, "closing it twice");
    sp_chan_free(ch);
}

static void *receiver(void *arg)
{
    int v;
    int rc = sp_chan_recv(ch, &v, -1);
    return IP(rc == -1 ? -errno : v);
}

static void *sender(void *arg)
{
    int v = (int)PI(arg);
    int rc = sp_chan_send(ch, &v, -1);
    return IP(rc == -1 ? -errno : 0);
}

static void test_parked_receivers_get_epipe(void **state)
{
    ch = sp_chan_make(sizeof(int), 0);
    sp_co *co[10];
    for (int i = 0; i < 10; i++)
        co[i] = sp_spawn(receiver, NULL, NULL);
    run_ready();
    sp_chan_close(ch);
    for (int i = 0; i < 10; i++) {
        void *r;
        sp_join(co[i], &r);
        CHECK_EQ(PI(r), -EPIPE, "parked receiver %d's result (-errno)", i);
    }
    sp_chan_free(ch); /* nobody is parked on it any more */
}

static void test_parked_senders_get_epipe(void **state)
{
    /* Unbuffered, and buffered-and-full: both kinds of parked sender. */
    for (int cap = 0; cap < 3; cap += 2) {
        ch = sp_chan_make(sizeof(int), (size_t)cap);
        for (int i = 0; i < cap; i++)
            sp_chan_send(ch, &i, -1);
        sp_co *co[10];
        for (int i = 0; i < 10; i++)
            co[i] = sp_spawn(sender, IP(100 + i), NULL);
        run_ready();
        sp_chan_close(ch);
        for (int i = 0; i < 10; i++) {
            void *r;
            sp_join(co[i], &r);
            CHECK_EQ(PI(r), -EPIPE, "capacity %d: parked sender %d's result (-errno)", cap, i);
        }
        /* What was buffered before the close is still delivered; the
         * parked senders' values are not. */
        for (int i = 0; i < cap; i++) {
            int v;
            CHECK_OK(sp_chan_recv(ch, &v, -1), "capacity %d: buffered value %d", cap, i);
            CHECK_EQ(v, i, "capacity %d: buffered value", cap);
        }
        int v;
        CHECK_FAILS(sp_chan_recv(ch, &v, -1), EPIPE, "capacity %d: recv after the drain", cap);
        sp_chan_free(ch);
    }
}

static void *loop_until_closed(void *arg)
{
    long n = 0;
    int v;
    while (sp_chan_recv(ch, &v, -1) == 0)
        n += v;
    return IP(errno == EPIPE ? n : -1);
}

static void test_range_loop(void **state)
{
    /* The usual worker loop: receive until the channel is closed. */
    ch = sp_chan_make(sizeof(int), 8);
    sp_co *co = sp_spawn(loop_until_closed, NULL, NULL);
    long want = 0;
    for (int i = 1; i <= 1000; i++) {
        sp_chan_send(ch, &i, -1);
        want += i;
    }
    sp_chan_close(ch);
    void *r;
    sp_join(co, &r);
    CHECK_EQ(PI(r), want, "sum received before EPIPE");
    sp_chan_free(ch);
}

static void *recv_value(void *arg)
{
    int v = -1;
    int rc = sp_chan_recv(arg, &v, -1);
    return IP(rc == 0 ? v : -errno);
}

static void *select_value(void *arg)
{
    sp_chan **two = arg;
    int a = -1, b = -1;
    sp_select_case c[] = {{two[0], SP_CHAN_RECV, &a, 0}, {two[1], SP_CHAN_RECV, &b, 0}};
    int k = sp_select(c, 2, -1);
    return IP(k == 1 && c[1].err == 0 ? b : -1);
}

static void test_free_right_after_the_last_send(void **state)
{
    /* The sender hands its value to a parked receiver and frees the
     * channel before the receiver has run: the receiver still gets the
     * value (it sits in the receiver's node, which keeps the channel
     * alive until it is given back). */
    for (int round = 0; round < 100; round++) {
        sp_chan *c = sp_chan_make(sizeof(int), (size_t)(round % 2));
        sp_co *r = sp_spawn(recv_value, c, NULL);
        run_ready();
        int v = 4000 + round;
        CHECK_OK(sp_chan_send(c, &v, -1), "send to the parked receiver");
        sp_chan_free(c);
        void *got;
        sp_join(r, &got);
        CHECK_EQ(PI(got), 4000 + round, "value received from a channel freed meanwhile");
    }
    /* The same for a select parked on two channels, both freed. */
    sp_chan *two[2] = {sp_chan_make(sizeof(int), 0), sp_chan_make(sizeof(int), 0)};
    sp_co *r = sp_spawn(select_value, two, NULL);
    run_ready();
    int v = 77;
    CHECK_OK(sp_chan_send(two[1], &v, -1), "send to the parked select");
    sp_chan_free(two[0]);
    sp_chan_free(two[1]);
    void *got;
    sp_join(r, &got);
    CHECK_EQ(PI(got), 77, "value the select received from a channel freed meanwhile");
}

static void free_with_waiter(void *arg)
{
    ch = sp_chan_make(sizeof(int), 0);
    sp_spawn(receiver, NULL, NULL);
    sp_yield();
    sp_chan_free(ch);
}

static void test_free_with_waiter_aborts(void **state)
{
    int status;
    char err[512];
    assert_int_equal(sp_test_child(free_with_waiter, NULL, &status, err, sizeof err), 0);
    CHECK_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
               "sp_chan_free with a parked receiver should abort; status %#x", status);
    CHECK_TRUE(strstr(err, "sp_chan_free") && strstr(err, "parked"),
               "the message should name sp_chan_free and the parked coroutine: '%s'", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_then_epipe),
        cmocka_unit_test(test_parked_receivers_get_epipe),
        cmocka_unit_test(test_parked_senders_get_epipe),
        cmocka_unit_test(test_range_loop),
        cmocka_unit_test(test_free_right_after_the_last_send),
        cmocka_unit_test(test_free_with_waiter_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
