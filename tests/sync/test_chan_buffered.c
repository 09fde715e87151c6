/* Buffered channels: values come out in the order they went in, the
 * buffer holds exactly its capacity, and senders that find it full wait in
 * line behind the buffered values. */
#include "sync_test.h"

static void test_capacity_and_order(void **state)
{
    sp_chan *ch = sp_chan_make(sizeof(int), 4);
    for (int i = 0; i < 4; i++)
        CHECK_OK(sp_chan_send(ch, &i, 0), "send %d into a buffer of 4 without waiting", i);
    CHECK_EQ(sp_chan_len(ch), 4, "values buffered");
    int v = 99;
    CHECK_FAILS(sp_chan_send(ch, &v, 0), EAGAIN, "a 5th send into a full buffer of 4");
    for (int i = 0; i < 4; i++) {
        CHECK_OK(sp_chan_recv(ch, &v, 0), "recv %d", i);
        CHECK_EQ(v, i, "value %d out of the buffer", i);
    }
    CHECK_FAILS(sp_chan_recv(ch, &v, 0), EAGAIN, "recv from an empty buffer");
    CHECK_EQ(sp_chan_len(ch), 0, "values buffered after draining");
    sp_chan_free(ch);
}

static void test_wraps_around(void **state)
{
    /* Uneven bursts walk the ring's head over its end many times. */
    sp_chan *ch = sp_chan_make(sizeof(long), 7);
    long next_in = 0, next_out = 0;
    for (int round = 0; round < 1000; round++) {
        int burst = 1 + round % 7;
        for (int i = 0; i < burst && sp_chan_len(ch) < 7; i++, next_in++)
            CHECK_OK(sp_chan_send(ch, &next_in, 0), "send %ld", next_in);
        int take = 1 + (round * 5) % 7;
        for (int i = 0; i < take && sp_chan_len(ch) > 0; i++, next_out++) {
            long v;
            CHECK_OK(sp_chan_recv(ch, &v, 0), "recv %ld", next_out);
            CHECK_EQ(v, next_out, "value out of the ring, in order");
        }
    }
    CHECK_TRUE(next_out > 2000, "the ring carried values (%ld)", next_out);
    sp_chan_free(ch);
}

static sp_chan *ch;

static void *sender(void *arg)
{
    int v = (int)PI(arg);
    return IP(sp_chan_send(ch, &v, -1));
}

static void test_full_buffer_senders_queue(void **state)
{
    ch = sp_chan_make(sizeof(int), 2);
    int a = 1, b = 2;
    sp_chan_send(ch, &a, -1);
    sp_chan_send(ch, &b, -1);
    /* Three senders find it full and park, in this order. */
    sp_co *co[3];
    for (int i = 0; i < 3; i++)
        co[i] = sp_spawn(sender, IP(10 + i), NULL);
    run_ready();
    CHECK_EQ(sp_chan_len(ch), 2, "buffered while senders wait");
    /* Each receive frees a slot that the first waiting sender fills at once,
     * so the order is: the buffer, then the senders in arrival order. */
    int want[] = {1, 2, 10, 11, 12};
    for (int i = 0; i < 5; i++) {
        int v;
        CHECK_OK(sp_chan_recv(ch, &v, -1), "recv %d", i);
        CHECK_EQ(v, want[i], "value %d", i);
    }
    for (int i = 0; i < 3; i++) {
        void *r;
        sp_join(co[i], &r);
        CHECK_EQ(PI(r), 0, "parked sender %d's result", i);
    }
    sp_chan_free(ch);
}

static long produced_sum, consumed_sum;

static void *producer(void *arg)
{
    long base = PI(arg) * 1000000;
    for (long i = 0; i < 5000; i++) {
        long v = base + i;
        if (sp_chan_send(ch, &v, -1) != 0)
            return IP(-1);
        produced_sum += v;
        if (i % 7 == 0)
            sp_yield();
    }
    return NULL;
}

static void *consumer(void *arg)
{
    long last[4] = {-1, -1, -1, -1};
    for (long i = 0; i < 5000; i++) {
        long v;
        if (sp_chan_recv(ch, &v, -1) != 0)
            return IP(-1);
        /* Each producer's values arrive in the order it sent them. */
        long p = v / 1000000, seq = v % 1000000;
        if (p < 0 || p > 3 || seq <= last[p])
            return IP(-2);
        last[p] = seq;
        consumed_sum += v;
        if (i % 3 == 0)
            sp_yield();
    }
    return NULL;
}

static void test_producers_consumers(void **state)
{
    ch = sp_chan_make(sizeof(long), 16);
    produced_sum = consumed_sum = 0;
    sp_co *co[8];
    for (int i = 0; i < 4; i++) {
        co[i] = sp_spawn(producer, IP(i), NULL);
        co[4 + i] = sp_spawn(consumer, NULL, NULL);
    }
    for (int i = 0; i < 8; i++) {
        void *r;
        sp_join(co[i], &r);
        CHECK_EQ(PI(r), 0, "coroutine %d (0-3 producers, 4-7 consumers; -2: out of order)", i);
    }
    CHECK_EQ(consumed_sum, produced_sum, "sum received vs sum sent");
    CHECK_EQ(sp_chan_len(ch), 0, "left in the buffer");
    sp_chan_free(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_and_order),
        cmocka_unit_test(test_wraps_around),
        cmocka_unit_test(test_full_buffer_senders_queue),
        cmocka_unit_test(test_producers_consumers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
