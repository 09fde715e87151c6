/* Join and cancel storms: thousands of coroutines parked on every kind of
 * sync wait, cancelled and joined in a scrambled order; and thousands of
 * workers trading values, locks and units under short deadlines while a
 * third of them are cancelled mid-flight, with the books checked at the
 * end (no value lost or duplicated, no unit or lock leaked, no waiter left
 * on any primitive). */
#include "blockers.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void shuffle(sp_co **co, int *tag, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rnd((uint32_t)i + 1);
        sp_co *t = co[i];
        co[i] = co[j];
        co[j] = t;
        int g = tag[i];
        tag[i] = tag[j];
        tag[j] = g;
    }
}

#define PARKED 20000
#define JOINERS (PARKED / 4)

static sp_co *pco[PARKED];
static int pkind[PARKED], porder[PARKED];
static char joined[PARKED];

static void *parked(void *arg)
{
    return IP(block((int)PI(arg), -1));
}

/* Joins parked coroutine i; records whether it got to. */
static void *joiner(void *arg)
{
    long i = PI(arg);
    void *r;
    if (sp_join(pco[i], &r) != 0)
        return IP(errno == ECANCELED ? 1 : -errno);
    joined[i] = 1;
    return IP(PI(r) == -ECANCELED ? 0 : -1000);
}

static void test_cancel_and_join_storm(void **state)
{
    static sp_co *jco[JOINERS];
    static int jtag[JOINERS];
    b_setup();
    for (int i = 0; i < PARKED; i++) {
        do /* not a sender that would complete another's receive */
            pkind[i] = (int)rnd(B_COUNT);
        while (pkind[i] == B_SEND_UNBUF);
        pco[i] = sp_spawn(parked, IP(pkind[i]), NULL);
        assert_non_null(pco[i]);
        porder[i] = i;
        joined[i] = 0;
    }
    for (int j = 0; j < JOINERS; j++) {
        jco[j] = sp_spawn(joiner, IP(j * 4), NULL);
        jtag[j] = j;
    }
    run_ready();
    /* Half of the joiners are cancelled in their join, then every parked
     * coroutine in a random order, letting the cancelled run now and then
     * (and cancelling some twice). */
    for (int j = 0; j < JOINERS; j += 2)
        CHECK_OK(sp_cancel(jco[j]), "cancel joiner %d", j);
    sp_co **order = malloc(PARKED * sizeof *order);
    memcpy(order, pco, PARKED * sizeof *order);
    shuffle(order, porder, PARKED);
    for (int i = 0; i < PARKED; i++) {
        CHECK_OK(sp_cancel(order[i]), "cancel %d (%s)", porder[i], b_name[pkind[porder[i]]]);
        if (rnd(8) == 0)
            sp_cancel(order[rnd((uint32_t)i + 1)]);
        if (rnd(64) == 0)
            sp_yield();
    }
    free(order);
    shuffle(jco, jtag, JOINERS);
    for (int j = 0; j < JOINERS; j++) {
        void *r;
        CHECK_OK(sp_join(jco[j], &r), "join joiner %d", jtag[j]);
        CHECK_EQ(PI(r), jtag[j] % 2 == 0 ? 1 : 0,
                 "joiner %d (1: its join was cancelled; 0: it joined a coroutine that "
                 "ended with ECANCELED)", jtag[j]);
    }
    for (int i = 0; i < PARKED; i++) {
        if (joined[i])
            continue;
        void *r;
        CHECK_OK(sp_join(pco[i], &r), "join parked coroutine %d", i);
        CHECK_EQ(PI(r), -ECANCELED, "coroutine parked in %s, cancelled (-errno)",
                 b_name[pkind[i]]);
    }
    for (int k = 0; k < B_COUNT; k++)
        CHECK_TRUE(unlinked(k), "%s: no waiter left after the storm", b_name[k]);
    b_teardown();
}

/* ---- the trading storm ---- */

#define WORKERS 6000
#define OPS 40
#define NCH 8
#define UNITS 5

static sp_chan *tch[NCH];
static sp_mutex tmu = SP_MUTEX_INIT;
static sp_sem tsem = SP_SEM_INIT(UNITS);
static long sent_n, sent_sum, recv_n, recv_sum, in_lock, lock_violations, units_out;

static int64_t short_deadline(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    uint32_t r = (*x >> 16) % 4;
    /* Never -1: a wait nobody can end would deadlock the thread. */
    return r == 0 ? sp_now() + 3000000 : r == 1 ? 0 : sp_now() + (int64_t)((*x >> 8) % 200000);
}

static void *trader(void *arg)
{
    long me = PI(arg);
    uint32_t x = (uint32_t)me * 2654435761u;
    for (long op = 0; op < OPS; op++) {
        x = x * 1103515245u + 12345u;
        int what = (int)((x >> 16) % 5);
        sp_chan *ch = tch[(x >> 8) % NCH];
        long v = me << 20 | op;
        int rc = 0;
        if (what == 0) {
            rc = sp_chan_send(ch, &v, short_deadline(&x));
            if (rc == 0) {
                sent_n++;
                sent_sum += v;
            }
        } else if (what == 1) {
            long got;
            rc = sp_chan_recv(ch, &got, short_deadline(&x));
            if (rc == 0) {
                recv_n++;
                recv_sum += got;
            }
        } else if (what == 2) {
            long got = -1;
            sp_select_case c[] = {{ch, SP_CHAN_RECV, &got, 0},
                                  {tch[(x >> 4) % NCH], SP_CHAN_SEND, &v, 0}};
            int k = sp_select(c, 2, short_deadline(&x));
            rc = k < 0 ? -1 : 0;
            if (k == 0) {
                recv_n++;
                recv_sum += got;
            } else if (k == 1) {
                sent_n++;
                sent_sum += v;
            }
        } else if (what == 3) {
            rc = sp_mutex_lock(&tmu, short_deadline(&x));
            if (rc == 0) {
                if (in_lock++)
                    lock_violations++;
                sp_yield();
                in_lock--;
                sp_mutex_unlock(&tmu);
            }
        } else {
            rc = sp_sem_acquire(&tsem, short_deadline(&x));
            if (rc == 0) {
                if (++units_out > UNITS)
                    lock_violations++;
                sp_yield();
                units_out--;
                sp_sem_release(&tsem);
            }
        }
        if (rc != 0 && errno == ECANCELED)
            return IP(1);
        if (rc != 0 && errno != ETIMEDOUT && errno != EAGAIN)
            return IP(-errno);
    }
    return NULL;
}

static void test_trading_storm(void **state)
{
    static sp_co *co[WORKERS];
    static int tag[WORKERS];
    for (int i = 0; i < NCH; i++)
        tch[i] = sp_chan_make(sizeof(long), (size_t)(i % 3) * 2);
    for (int i = 0; i < WORKERS; i++) {
        co[i] = sp_spawn(trader, IP(i), NULL);
        tag[i] = i;
    }
    /* Cancel about half of them while the trade goes on. */
    for (int round = 0; round < 100; round++) {
        for (int j = 0; j < WORKERS / 60; j++)
            sp_cancel(co[rnd(WORKERS)]);
        sp_yield(); /* about one op of every trader */
    }
    shuffle(co, tag, WORKERS);
    long cancelled = 0;
    for (int i = 0; i < WORKERS; i++) {
        void *r;
        CHECK_OK(sp_join(co[i], &r), "join trader %d", tag[i]);
        CHECK_TRUE(PI(r) == 0 || PI(r) == 1, "trader %d ended with %ld (-errno: a wait "
                   "failed for a reason other than a timeout or a cancel)", tag[i], PI(r));
        cancelled += PI(r);
    }
    /* What is still buffered was sent and not received. */
    long left_n = 0, left_sum = 0;
    for (int i = 0; i < NCH; i++) {
        long v;
        while (sp_chan_recv(tch[i], &v, 0) == 0) {
            left_n++;
            left_sum += v;
        }
        CHECK_FAILS(sp_chan_recv(tch[i], &v, 0), EAGAIN, "channel %d, drained", i);
        sp_chan_free(tch[i]);
    }
    CHECK_EQ(recv_n + left_n, sent_n, "values received or left in buffers vs sent");
    CHECK_EQ(recv_sum + left_sum, sent_sum, "their sums (a duplicate or a loss shows)");
    CHECK_EQ(lock_violations, 0, "times the mutex or the semaphore let too many in");
    CHECK_TRUE(sent_n > 1000, "values traded (%ld)", sent_n);
    CHECK_TRUE(cancelled > 0, "traders cancelled (%ld)", cancelled);
    print_message("traded %ld values through %d channels; %ld of %d traders cancelled\n",
                  sent_n, NCH, cancelled, WORKERS);
    CHECK_OK(sp_mutex_trylock(&tmu), "the mutex is free at the end");
    sp_mutex_unlock(&tmu);
    for (int i = 0; i < UNITS; i++)
        CHECK_OK(sp_sem_acquire(&tsem, 0), "semaphore unit %d is back", i);
    CHECK_FAILS(sp_sem_acquire(&tsem, 0), EAGAIN, "no unit beyond the %d", UNITS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_and_join_storm),
        cmocka_unit_test(test_trading_storm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
