/* 100,000 coroutines in a pipeline: each stage receives a token from the
 * previous stage's channel, folds its own number into the token's checksum
 * and passes it on.  Channel capacities cycle 0, 1, 2, 3, so both the
 * hand-over to a parked peer and the ring buffer carry tokens.  The sink
 * checks that every token arrives once, in order, through every stage:
 * a lost, duplicated, reordered or corrupted message shows.  Closing the
 * first channel then shuts the pipeline down stage by stage. */
#include "sync_test.h"

#define STAGES 100000
#define TOKENS 24

typedef struct token {
    long id;
    long hops;
    uint64_t sum;
    unsigned char pad[40]; /* a 64-byte element: more than one move to copy */
} token;

static sp_chan *link_[STAGES + 1];

static uint64_t fold(uint64_t sum, long stage, long id)
{
    return (sum ^ (uint64_t)(stage * 2654435761u + id)) * 0x100000001b3ull;
}

static void *stage(void *arg)
{
    long i = PI(arg);
    token t;
    while (sp_chan_recv(link_[i], &t, -1) == 0) {
        t.sum = fold(t.sum, i, t.id);
        t.hops++;
        t.pad[i % sizeof t.pad]++;
        if (sp_chan_send(link_[i + 1], &t, -1) != 0)
            return IP(-1);
    }
    if (errno != EPIPE)
        return IP(-2);
    sp_chan_close(link_[i + 1]); /* pass the shutdown on */
    return NULL;
}

static void *feeder(void *arg)
{
    for (long k = 0; k < TOKENS; k++) {
        token t;
        memset(&t, 0, sizeof t);
        t.id = k;
        if (sp_chan_send(link_[0], &t, -1) != 0)
            return IP(-1);
    }
    sp_chan_close(link_[0]);
    return NULL;
}

static void test_pipeline(void **state)
{
    for (long i = 0; i <= STAGES; i++) {
        link_[i] = sp_chan_make(sizeof(token), (size_t)(i % 4));
        assert_non_null(link_[i]);
    }
    sp_co_attr d = {.detached = 1};
    for (long i = 0; i < STAGES; i++)
        if (!sp_spawn(stage, IP(i), &d))
            fail_msg("spawning stage %ld of %d: %s", i, STAGES, strerror(errno));
    sp_co *feed = sp_spawn(feeder, NULL, NULL);
    /* What every token's checksum and padding must be at the sink. */
    for (long k = 0; k < TOKENS; k++) {
        token t;
        CHECK_OK(sp_chan_recv(link_[STAGES], &t, -1), "token %ld at the sink", k);
        CHECK_EQ(t.id, k, "id of the %ld-th token out (lost, duplicated or reordered)", k);
        CHECK_EQ(t.hops, STAGES, "stages token %ld went through", k);
        uint64_t want = 0;
        for (long i = 0; i < STAGES; i++)
            want = fold(want, i, k);
        CHECK_TRUE(t.sum == want, "token %ld's checksum: expected %#llx, got %#llx", k,
                   (unsigned long long)want, (unsigned long long)t.sum);
        for (int b = 0; b < (int)sizeof t.pad; b++) {
            long n = STAGES / (long)sizeof t.pad + (b < STAGES % (int)sizeof t.pad);
            CHECK_EQ(t.pad[b], (unsigned char)n, "token %ld's padding byte %d", k, b);
        }
    }
    token t;
    CHECK_FAILS(sp_chan_recv(link_[STAGES], &t, -1), EPIPE,
                "the sink after the last token: the close came through all stages");
    void *r;
    sp_join(feed, &r);
    CHECK_EQ(PI(r), 0, "feeder result");
    /* Every stage closed its output and returned before the sink saw
     * EPIPE: no coroutine is parked on a channel (sp_chan_free checks). */
    for (long i = 0; i <= STAGES; i++)
        sp_chan_free(link_[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
