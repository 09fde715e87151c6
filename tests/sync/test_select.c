/* sp_select: one case out of several, a fair pick among ready cases, the
 * "default" case (deadline 0), deadlines, closed channels, and the cases
 * that did not fire leaving their channels. */
#include "sync_test.h"

static void test_picks_the_ready_case(void **state)
{
    sp_chan *a = sp_chan_make(sizeof(int), 1), *b = sp_chan_make(sizeof(int), 1);
    int va = -1, vb = -1, x = 5;
    sp_chan_send(b, &x, -1);
    sp_select_case c[] = {{a, SP_CHAN_RECV, &va, 0}, {b, SP_CHAN_RECV, &vb, 0}};
    CHECK_EQ(sp_select(c, 2, -1), 1, "the index of the one ready case");
    CHECK_EQ(vb, 5, "value received by case 1");
    CHECK_EQ(va, -1, "case 0's destination, untouched");
    CHECK_EQ(c[1].err, 0, "case 1's err");
    /* A send case: a has room. */
    int y = 9;
    sp_select_case s[] = {{b, SP_CHAN_RECV, &vb, 0}, {a, SP_CHAN_SEND, &y, 0}};
    CHECK_EQ(sp_select(s, 2, -1), 1, "the send case with room");
    CHECK_EQ(sp_chan_len(a), 1, "a's buffer after the send case");
    sp_chan_free(a);
    sp_chan_free(b);
}

static void test_default_and_deadline(void **state)
{
    sp_chan *a = sp_chan_make(sizeof(int), 0);
    int v;
    sp_select_case c[] = {{a, SP_CHAN_RECV, &v, 0}, {NULL, SP_CHAN_RECV, &v, 0}};
    CHECK_FAILS(sp_select(c, 2, 0), EAGAIN, "select with deadline 0 and nothing ready");
    int64_t t0 = sp_now();
    CHECK_FAILS(sp_select(c, 2, sp_deadline_ms(20)), ETIMEDOUT, "select past its deadline");
    CHECK_TRUE(sp_now() - t0 >= 20 * 1000000LL, "select waited %lld ns of its 20 ms",
               (long long)(sp_now() - t0));
    /* Its node left the channel: a sender finds no receiver. */
    CHECK_FAILS(sp_chan_send(a, &v, 0), EAGAIN, "send to the channel a timed-out select left");
    /* No cases at all: only the deadline ends it. */
    CHECK_FAILS(sp_select(NULL, 0, sp_deadline_ms(1)), ETIMEDOUT, "select with no cases");
    c[0].op = 7;
    CHECK_FAILS(sp_select(c, 2, 0), EINVAL, "a case with op 7");
    CHECK_FAILS(sp_select(c, -1, 0), EINVAL, "n = -1");
    sp_chan_free(a);
}

static void test_fair_among_ready(void **state)
{
    /* Both always ready: each should win about half of the time. */
    sp_chan *a = sp_chan_make(sizeof(int), 1), *b = sp_chan_make(sizeof(int), 1);
    int x = 1, v;
    int wins[3] = {0};
    sp_chan_send(a, &x, -1);
    sp_chan_send(b, &x, -1);
    sp_select_case c[] = {{a, SP_CHAN_RECV, &v, 0}, {b, SP_CHAN_RECV, &v, 0},
                          {a, SP_CHAN_RECV, &v, 0}};
    for (int i = 0; i < 30000; i++) {
        int k = sp_select(c, 3, 0);
        CHECK_TRUE(k >= 0 && k < 3, "select %d returned %d", i, k);
        wins[k]++;
        sp_chan_send(c[k].ch, &x, -1); /* refill what was taken */
    }
    for (int k = 0; k < 3; k++)
        CHECK_TRUE(wins[k] > 8000 && wins[k] < 12000,
                   "case %d won %d of 30000 picks among 3 ready cases", k, wins[k]);
    sp_chan_free(a);
    sp_chan_free(b);
}

static sp_chan *ch[3];

static void *selector(void *arg)
{
    int v = -1;
    int out = 77;
    sp_select_case c[] = {{ch[0], SP_CHAN_RECV, &v, 0},
                          {ch[1], SP_CHAN_RECV, &v, 0},
                          {ch[2], SP_CHAN_SEND, &out, 0}};
    int k = sp_select(c, 3, -1);
    if (k < 0)
        return IP(-errno);
    return IP(k * 1000 + (c[k].err ? 999 : c[k].op == SP_CHAN_RECV ? v : 0));
}

static void test_parked_select_woken_by_each_case(void **state)
{
    for (int which = 0; which < 3; which++) {
        for (int i = 0; i < 3; i++)
            ch[i] = sp_chan_make(sizeof(int), 0);
        sp_co *co = sp_spawn(selector, NULL, NULL);
        run_ready();
        int v = 40 + which;
        if (which < 2) {
            CHECK_OK(sp_chan_send(ch[which], &v, 0), "send to case %d of a parked select", which);
        } else {
            CHECK_OK(sp_chan_recv(ch[2], &v, 0), "recv from the send case of a parked select");
            CHECK_EQ(v, 77, "value of the select's send case");
        }
        void *r;
        sp_join(co, &r);
        CHECK_EQ(PI(r), which * 1000 + (which < 2 ? 40 + which : 0),
                 "select woken through case %d: index*1000 + value", which);
        /* Exactly one case happened: the other nodes are gone. */
        for (int i = 0; i < 3; i++) {
            CHECK_FAILS(sp_chan_send(ch[i], &v, 0), EAGAIN, "send to channel %d afterwards", i);
            CHECK_FAILS(sp_chan_recv(ch[i], &v, 0), EAGAIN, "recv from channel %d afterwards", i);
            sp_chan_free(ch[i]);
        }
    }
}

static void test_closed_channel_case(void **state)
{
    for (int i = 0; i < 3; i++)
        ch[i] = sp_chan_make(sizeof(int), 0);
    /* Closed before: the case is ready at once, with EPIPE. */
    sp_chan_close(ch[1]);
    int v;
    sp_select_case c[] = {{ch[0], SP_CHAN_RECV, &v, 0}, {ch[1], SP_CHAN_RECV, &v, 0}};
    CHECK_EQ(sp_select(c, 2, -1), 1, "the closed channel's case");
    CHECK_EQ(c[1].err, EPIPE, "its err");
    sp_select_case s[] = {{ch[0], SP_CHAN_RECV, &v, 0}, {ch[1], SP_CHAN_SEND, &v, 0}};
    CHECK_EQ(sp_select(s, 2, -1), 1, "a send case on the closed channel");
    CHECK_EQ(s[1].err, EPIPE, "its err");
    /* Closed while parked: the select wakes through that case. */
    sp_chan_free(ch[1]);
    ch[1] = sp_chan_make(sizeof(int), 0);
    sp_co *co = sp_spawn(selector, NULL, NULL);
    run_ready();
    sp_chan_close(ch[1]);
    void *r;
    sp_join(co, &r);
    CHECK_EQ(PI(r), 1999, "select woken by a close: index*1000 + 999");
    for (int i = 0; i < 3; i++)
        sp_chan_free(ch[i]);
}

static void *select_forever(void *arg)
{
    return IP(selector(NULL) == IP(-ECANCELED));
}

static void test_cancel_parked_select(void **state)
{
    for (int i = 0; i < 3; i++)
        ch[i] = sp_chan_make(sizeof(int), 0);
    sp_co *co = sp_spawn(select_forever, NULL, NULL);
    run_ready();
    CHECK_OK(sp_cancel(co), "sp_cancel");
    void *r;
    sp_join(co, &r);
    CHECK_EQ(PI(r), 1, "the parked select failed with ECANCELED");
    int v = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_FAILS(sp_chan_send(ch[i], &v, 0), EAGAIN, "channel %d after the cancel (send)", i);
        CHECK_FAILS(sp_chan_recv(ch[i], &v, 0), EAGAIN, "channel %d after the cancel (recv)", i);
        sp_chan_free(ch[i]);
    }
}

static sp_chan *pp[2];

static void *ponger(void *arg)
{
    /* Echoes on whichever channel: select over two receives in a loop. */
    long sum = 0;
    for (int i = 0; i < 2000; i++) {
        int v;
        sp_select_case c[] = {{pp[0], SP_CHAN_RECV, &v, 0}, {pp[1], SP_CHAN_RECV, &v, 0}};
        int k = sp_select(c, 2, -1);
        if (k < 0)
            return IP(-1);
        sum += v * (k + 1);
    }
    return IP(sum);
}

static void test_select_loop(void **state)
{
    pp[0] = sp_chan_make(sizeof(int), 0);
    pp[1] = sp_chan_make(sizeof(int), 3);
    sp_co *co = sp_spawn(ponger, NULL, NULL);
    long want = 0;
    for (int i = 0; i < 2000; i++) {
        int k = i % 3 == 0;
        sp_chan_send(pp[k], &i, -1);
        want += (long)i * (k + 1);
    }
    void *r;
    sp_join(co, &r);
    CHECK_EQ(PI(r), want, "sum of value*(case+1) over 2000 selects");
    sp_chan_free(pp[0]);
    sp_chan_free(pp[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_picks_the_ready_case),
        cmocka_unit_test(test_default_and_deadline),
        cmocka_unit_test(test_fair_among_ready),
        cmocka_unit_test(test_parked_select_woken_by_each_case),
        cmocka_unit_test(test_closed_channel_case),
        cmocka_unit_test(test_cancel_parked_select),
        cmocka_unit_test(test_select_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
