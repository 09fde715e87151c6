/* Channels across M:N workers: tokens pass through a ring of stages, each
 * stage two coroutines receiving from one channel and sending to the next
 * (unbuffered and buffered stages alternate, fixed and shared stacks
 * alternate: a shared-stack coroutine stays on its worker, so its wakes
 * from other workers go through that worker's inbox).  Every stage must
 * pass every token exactly once: the checksum and the count of each stage,
 * and the set of tokens the sink receives, equal what the feeders sent.
 * A coroutine that spins without parking keeps its worker busy until
 * another worker has run a stage: proof that the coroutines really ran on
 * several threads. */
#include "mn_test.h"

#define STAGES 8
#define PER_STAGE 2
#define FEEDERS 2
#define TOKENS MN_N(125000) /* 8 stages: a million channel messages */

typedef struct stage {
    int idx, k;
    uint64_t sum, count; /* written by its coroutine, read after sp_run */
    uint64_t seen;
} stage;

static struct {
    sp_chan *ring[STAGES + 1]; /* ring[STAGES]: the sink */
    _Atomic int left[STAGES + 1]; /* coroutines of stage s still running */
    stage st[STAGES][PER_STAGE];
    uint8_t *got;              /* per token: times the sink received it */
    uint64_t sink_sum, sink_count, bad_sends[FEEDERS];
    int spin_ok, spin_worker;
} R;

static uint64_t token_sum(void)
{
    uint64_t n = TOKENS;
    return n * (n + 1) / 2;
}

/* The last coroutine to leave a stage closes the next channel: what is
 * buffered there still drains first. */
static void leave(int s)
{
    if (atomic_fetch_sub(&R.left[s], 1) == 1)
        sp_chan_close(R.ring[s]);
}

static void *feeder(void *arg)
{
    int f = (int)PI(arg);
    uint64_t local = 0;
    for (uint64_t v = (uint64_t)f + 1; v <= TOKENS; v += FEEDERS) {
        if (sp_chan_send(R.ring[0], &v, -1) != 0)
            R.bad_sends[f]++;
        if ((v & 1023) == 0)
            mn_note(&local);
    }
    leave(0);
    return NULL;
}

static void *stage_fn(void *arg)
{
    stage *me = arg;
    uint64_t v, local = 0;
    while (sp_chan_recv(R.ring[me->idx], &v, -1) == 0) {
        me->sum += v;
        me->count++;
        mn_note(&local);
        if (sp_chan_send(R.ring[me->idx + 1], &v, -1) != 0)
            me->count += 1ull << 40; /* a lost token: the count shows it */
    }
    me->seen = local;
    leave(me->idx + 1);
    return NULL;
}

static void *sink(void *arg)
{
    uint64_t v, local = 0;
    while (sp_chan_recv(R.ring[STAGES], &v, -1) == 0) {
        if (v >= 1 && v <= TOKENS && R.got[v - 1] < 255)
            R.got[v - 1]++;
        R.sink_sum += v;
        R.sink_count++;
        mn_note(&local);
    }
    return NULL;
}

/* Busy on its worker, never parking, until another worker runs one of the
 * ring's coroutines (or 20 seconds pass). */
static void *spinner(void *arg)
{
    int me = sp_worker_index();
    R.spin_worker = me;
    int64_t end = sp_now() + 20000000000LL;
    while (sp_now() < end) {
        uint64_t seen = atomic_load_explicit(&mn_seen, memory_order_relaxed);
        if (seen & ~(1ull << me)) {
            R.spin_ok = 1;
            break;
        }
    }
    return NULL;
}

static void *ring_main(void *arg)
{
    for (int s = 0; s <= STAGES; s++) {
        R.ring[s] = sp_chan_make(sizeof(uint64_t), s % 2 ? 3 : 0);
        atomic_store(&R.left[s], s == 0 ? FEEDERS : PER_STAGE);
    }
    sp_co *spin = sp_spawn(spinner, NULL, NULL);
    sp_co *co[STAGES * PER_STAGE + FEEDERS + 1];
    int n = 0;
    co[n++] = sp_spawn(sink, NULL, NULL);
    for (int s = 0; s < STAGES; s++)
        for (int k = 0; k < PER_STAGE; k++) {
            sp_co_attr a = {.stack = (s + k) % 2 ? SP_STACK_SHARED : SP_STACK_FIXED};
            R.st[s][k] = (stage){.idx = s, .k = k};
            co[n++] = sp_spawn(stage_fn, &R.st[s][k], &a);
        }
    for (int f = 0; f < FEEDERS; f++)
        co[n++] = sp_spawn(feeder, IP(f), NULL);
    for (int i = 0; i < n; i++)
        if (!co[i] || sp_join(co[i], NULL) != 0)
            return IP(-1);
    sp_join(spin, NULL);
    for (int s = 0; s <= STAGES; s++)
        sp_chan_free(R.ring[s]);
    return NULL;
}

static void run_ring(int workers)
{
    memset(&R, 0, sizeof R);
    atomic_store(&mn_seen, 0);
    R.got = calloc(TOKENS, 1);
    assert_non_null(R.got);
    void *r = mn_run(ring_main, NULL, workers);
    CHECK_EQ(PI(r), 0, "ring with %d workers: spawn and join of every coroutine", workers);
    for (int f = 0; f < FEEDERS; f++)
        CHECK_EQ(R.bad_sends[f], 0, "sends of feeder %d that failed", f);
    for (int s = 0; s < STAGES; s++) {
        uint64_t sum = 0, count = 0;
        for (int k = 0; k < PER_STAGE; k++) {
            sum += R.st[s][k].sum;
            count += R.st[s][k].count;
        }
        CHECK_EQ(count, TOKENS, "tokens through stage %d (%s, %d workers; 2^40 per lost send)",
                 s, s % 2 ? "buffered" : "unbuffered", workers);
        CHECK_EQ(sum, token_sum(), "checksum of stage %d (%d workers)", s, workers);
    }
    CHECK_EQ(R.sink_count, TOKENS, "tokens at the sink (%d workers)", workers);
    CHECK_EQ(R.sink_sum, token_sum(), "checksum at the sink (%d workers)", workers);
    long missing = 0, dup = 0;
    for (long i = 0; i < TOKENS; i++) {
        missing += R.got[i] == 0;
        dup += R.got[i] > 1;
    }
    CHECK_EQ(missing, 0, "tokens never received (%d workers)", workers);
    CHECK_EQ(dup, 0, "tokens received twice (%d workers)", workers);
    free(R.got);
    uint64_t seen = atomic_load(&mn_seen);
    CHECK_TRUE(R.spin_ok, "while a coroutine spun on worker %d, another worker ran a ring "
               "coroutine (seen mask %#llx, %d workers)", R.spin_worker,
               (unsigned long long)seen, workers);
    CHECK_TRUE(mn_popcount(seen) > 1, "ring coroutines ran on more than one worker (mask "
               "%#llx)", (unsigned long long)seen);
    print_message("%d workers: the ring ran on %d of them\n", workers, mn_popcount(seen));
}

static void test_ring_2_workers(void **state) { run_ring(2); }
static void test_ring_4_workers(void **state) { run_ring(4); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_2_workers),
        cmocka_unit_test(test_ring_4_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
