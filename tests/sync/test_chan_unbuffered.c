/* Unbuffered channels: a send completes only when a receiver takes the
 * value, waiting senders and receivers are served in the order they came,
 * and values of any size arrive intact. */
#include "sync_test.h"

static sp_chan *ch;
static int sent;

static void *send_one(void *arg)
{
    long v = PI(arg);
    int rc = sp_chan_send(ch, &v, -1);
    sent++;
    return IP(rc);
}

static void test_send_waits_for_a_receiver(void **state)
{
    ch = sp_chan_make(sizeof(long), 0);
    assert_non_null(ch);
    sent = 0;
    long v = 7;
    CHECK_FAILS(sp_chan_send(ch, &v, 0), EAGAIN, "send, deadline 0, nobody receiving");
    sp_co *co = sp_spawn(send_one, IP(42), NULL);
    sp_sleep_ms(10); /* the sender runs, finds no receiver, parks */
    CHECK_EQ(sent, 0, "sends completed before any receive");
    long got = 0;
    CHECK_OK(sp_chan_recv(ch, &got, -1), "recv from a parked sender");
    CHECK_EQ(got, 42, "value received");
    void *r;
    sp_join(co, &r);
    CHECK_EQ(PI(r), 0, "sp_chan_send's result once received");
    CHECK_EQ(sent, 1, "sends completed after the receive");
    CHECK_FAILS(sp_chan_recv(ch, &got, 0), EAGAIN, "recv, deadline 0, nobody sending");
    sp_chan_free(ch);
}

static long recv_log[16];
static int recv_n;

static void *recv_one(void *arg)
{
    long v = -1;
    int rc = sp_chan_recv(ch, &v, -1);
    recv_log[recv_n++] = PI(arg) * 1000 + v;
    return IP(rc);
}

static void test_waiters_served_in_order(void **state)
{
    ch = sp_chan_make(sizeof(long), 0);
    /* Five senders park in spawn order; the receiver sees them in it. */
    sp_co *co[5];
    for (int i = 0; i < 5; i++)
        co[i] = sp_spawn(send_one, IP(100 + i), NULL);
    run_ready();
    for (int i = 0; i < 5; i++) {
        long got;
        CHECK_OK(sp_chan_recv(ch, &got, -1), "recv %d", i);
        CHECK_EQ(got, 100 + i, "value from the sender that parked %d-th", i);
    }
    for (int i = 0; i < 5; i++)
        sp_join(co[i], NULL);
    /* Five receivers park in spawn order; the first sent value goes to the
     * first of them. */
    recv_n = 0;
    for (int i = 0; i < 5; i++)
        co[i] = sp_spawn(recv_one, IP(i), NULL);
    run_ready();
    for (long i = 0; i < 5; i++)
        CHECK_OK(sp_chan_send(ch, &i, -1), "send %ld to parked receivers", i);
    for (int i = 0; i < 5; i++)
        sp_join(co[i], NULL);
    CHECK_EQ(recv_n, 5, "receivers that got a value");
    for (int i = 0; i < 5; i++)
        CHECK_EQ(recv_log[i], i * 1000 + i, "receiver*1000+value, in wake order, entry %d", i);
    sp_chan_free(ch);
}

/* A 100-byte element sent from a coroutine's stack, received into
 * another's, a thousand times each way. */
typedef struct big {
    long seq;
    unsigned char bytes[88];
    long check;
} big;

static void fill(big *b, long seq)
{
    b->seq = seq;
    for (int i = 0; i < (int)sizeof b->bytes; i++)
        b->bytes[i] = (unsigned char)(seq * 31 + i);
    b->check = ~seq;
}

static int intact(const big *b, long seq)
{
    if (b->seq != seq || b->check != ~seq)
        return 0;
    for (int i = 0; i < (int)sizeof b->bytes; i++)
        if (b->bytes[i] != (unsigned char)(seq * 31 + i))
            return 0;
    return 1;
}

static void *big_sender(void *arg)
{
    for (long i = 0; i < 1000; i++) {
        big b;
        fill(&b, i);
        if (sp_chan_send(ch, &b, -1) != 0)
            return IP(-1);
    }
    return NULL;
}

static void *big_receiver(void *arg)
{
    for (long i = 0; i < 1000; i++) {
        big b;
        memset(&b, 0, sizeof b);
        if (sp_chan_recv(ch, &b, -1) != 0 || !intact(&b, i))
            return IP(i + 1);
    }
    return NULL;
}

static void test_large_elements_intact(void **state)
{
    ch = sp_chan_make(sizeof(big), 0);
    sp_co *s = sp_spawn(big_sender, NULL, NULL);
    sp_co *r = sp_spawn(big_receiver, NULL, NULL);
    void *rs, *rr;
    sp_join(s, &rs);
    sp_join(r, &rr);
    CHECK_EQ(PI(rs), 0, "sender result");
    CHECK_EQ(PI(rr), 0, "receiver: first corrupted message (seq+1)");
    sp_chan_free(ch);
}

static void *signaller(void *arg)
{
    for (int i = 0; i < 100; i++)
        if (sp_chan_send(ch, NULL, -1) != 0)
            return IP(-1);
    return NULL;
}

static void test_zero_size_signals(void **state)
{
    ch = sp_chan_make(0, 0);
    assert_non_null(ch);
    sp_co *co = sp_spawn(signaller, NULL, NULL);
    for (int i = 0; i < 100; i++)
        CHECK_OK(sp_chan_recv(ch, NULL, -1), "signal %d", i);
    void *r;
    sp_join(co, &r);
    CHECK_EQ(PI(r), 0, "signaller result");
    CHECK_FAILS(sp_chan_send(ch, NULL, 0), EAGAIN, "no receiver left");
    sp_chan_free(ch);
}

static void test_make_errors(void **state)
{
    errno = 0;
    assert_null(sp_chan_make(SIZE_MAX / 2, 4));
    CHECK_EQ(errno, EINVAL, "errno of an overflowing sp_chan_make");
    sp_chan_free(NULL);
    ch = sp_chan_make(8, 0);
    CHECK_FAILS(sp_chan_send(ch, NULL, 0), EINVAL, "send of NULL on an 8-byte channel");
    sp_chan_free(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_waits_for_a_receiver),
        cmocka_unit_test(test_waiters_served_in_order),
        cmocka_unit_test(test_large_elements_intact),
        cmocka_unit_test(test_zero_size_signals),
        cmocka_unit_test(test_make_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
