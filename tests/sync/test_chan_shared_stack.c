/* Values in flight survive shared stacks whatever the runtime default: the
 * sender's value and the receiver's destination are locals, and between
 * the send and the receive a coroutine with a deep frame runs over the
 * same run stack, overwriting whatever a parked coroutine left there. */
#include "sync_test.h"

static sp_chan *ch;
static sp_co_attr shared = {.stack = SP_STACK_SHARED};

static void *scribbler(void *arg)
{
    /* 32 KiB of frame, written: any pointer into a parked coroutine's
     * frames now reads this pattern. */
    volatile unsigned char junk[32 * 1024];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0xA5;
    sp_yield();
    return IP(junk[100]);
}

static void *sender(void *arg)
{
    unsigned char v[256];
    for (int i = 0; i < (int)sizeof v; i++)
        v[i] = (unsigned char)(i ^ PI(arg));
    int rc = sp_chan_send(ch, v, -1); /* parks: nobody receives yet */
    memset(v, 0, sizeof v);           /* the value went, not a pointer to it */
    return IP(rc);
}

static void *receiver(void *arg)
{
    unsigned char v[256];
    memset(v, 0x11, sizeof v);
    int rc = sp_chan_recv(ch, v, -1); /* parks: nobody sends yet */
    if (rc != 0)
        return IP(-1);
    for (int i = 0; i < (int)sizeof v; i++)
        if (v[i] != (unsigned char)(i ^ PI(arg)))
            return IP(i + 1);
    return NULL;
}

static void test_parked_sender(void **state)
{
    ch = sp_chan_make(256, 0);
    sp_co *s = sp_spawn(sender, IP(0x3c), &shared);
    run_ready(); /* the sender parks with its value */
    sp_join(sp_spawn(scribbler, NULL, &shared), NULL);
    sp_co *r = sp_spawn(receiver, IP(0x3c), &shared);
    void *rs, *rr;
    sp_join(r, &rr);
    sp_join(s, &rs);
    CHECK_EQ(PI(rr), 0, "receiver: first wrong byte + 1 (value of a parked shared-stack sender)");
    CHECK_EQ(PI(rs), 0, "sender result");
    sp_chan_free(ch);
}

static void *sending_after_scribble(void *arg)
{
    sp_join(sp_spawn(scribbler, NULL, &shared), NULL);
    return sender(arg);
}

static void test_parked_receiver(void **state)
{
    ch = sp_chan_make(256, 0);
    sp_co *r = sp_spawn(receiver, IP(0x5a), &shared);
    run_ready(); /* the receiver parks, its destination on its stack */
    sp_co *s = sp_spawn(sending_after_scribble, IP(0x5a), &shared);
    void *rs, *rr;
    sp_join(s, &rs);
    sp_join(r, &rr);
    CHECK_EQ(PI(rr), 0, "receiver: first wrong byte + 1 (value handed to a parked "
             "shared-stack receiver)");
    CHECK_EQ(PI(rs), 0, "sender result");
    sp_chan_free(ch);
}

static void *select_receiver(void *arg)
{
    unsigned char a[256], b[256];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    sp_select_case c[] = {{ch, SP_CHAN_RECV, a, 0}, {NULL, SP_CHAN_RECV, b, 0}};
    if (sp_select(c, 2, -1) != 0)
        return IP(-1);
    for (int i = 0; i < (int)sizeof a; i++)
        if (a[i] != (unsigned char)(i ^ 0x77))
            return IP(i + 1);
    return NULL;
}

static void test_parked_select(void **state)
{
    ch = sp_chan_make(256, 0);
    sp_co *r = sp_spawn(select_receiver, NULL, &shared);
    run_ready();
    sp_co *s = sp_spawn(sending_after_scribble, IP(0x77), &shared);
    void *rr;
    sp_join(s, NULL);
    sp_join(r, &rr);
    CHECK_EQ(PI(rr), 0, "select receiver: first wrong byte + 1");
    sp_chan_free(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parked_sender),
        cmocka_unit_test(test_parked_receiver),
        cmocka_unit_test(test_parked_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
