/* sp_select across M:N workers: selectors on every worker wait, with short
 * random deadlines, on three receive cases (two unbuffered channels, one
 * buffered) and a send case, while senders on other workers send to those
 * channels (plainly, or by selecting over two of them) and drainers take
 * what the selectors send.  Deadlines race with sends all the time, and a
 * selector and a sender that selects may meet each other.  Then:
 *  - each select performed exactly one case or failed with ETIMEDOUT
 *    (EAGAIN for deadline 0), and wrote no value for a case it did not
 *    perform;
 *  - every value whose send succeeded was received exactly once, and
 *    nothing was received that no send reported delivered. */
#include "mn_test.h"

#define SELECTORS 8
#define SENDERS 4
#define DRAINERS 2
#define ITERS MN_N(50000)   /* selects per selector */
#define MAXV (1 << 21)

static struct {
    sp_chan *a, *b, *c, *d; /* a, b unbuffered, c buffered: to selectors; d from them */
    _Atomic uint8_t sent[MAXV], got[MAXV];
    _Atomic uint32_t next_val;
    _Atomic int stop;
    _Atomic long bad_ret, wrote_other, fired[5], timeouts;
    _Atomic long self_sends;
} Z;

static uint32_t fresh(void)
{
    uint32_t v = atomic_fetch_add(&Z.next_val, 1);
    return v < MAXV ? v : 0;
}

static void mark(_Atomic uint8_t *a, uint32_t v)
{
    if (v && v < MAXV)
        atomic_fetch_add(&a[v], 1);
}

static int64_t some_deadline(uint32_t *rng)
{
    switch (mn_rand(rng) % 8) {
    case 0: return 0;                          /* only look */
    case 1: return sp_now();                   /* already passed */
    case 2: return sp_now() + 20000;           /* 20 us */
    default: return sp_now() + (int64_t)(mn_rand(rng) % 1000000);
    }
}

static void *selector(void *arg)
{
    int me = (int)PI(arg);
    uint32_t rng = mn_seed((uint32_t)me + 11);
    uint64_t local = 0;
    for (int i = 0; i < ITERS; i++) {
        uint32_t va = 0, vb = 0, vc = 0, wd = fresh();
        /* Every other selector also sends on a, a channel it receives from:
         * the two cases of one select must never meet. */
        uint32_t wa = me % 2 ? fresh() : 0;
        sp_select_case c[] = {{Z.a, SP_CHAN_RECV, &va, 0},
                              {Z.b, SP_CHAN_RECV, &vb, 0},
                              {Z.c, SP_CHAN_RECV, &vc, 0},
                              {wd ? Z.d : NULL, SP_CHAN_SEND, &wd, 0},
                              {wa ? Z.a : NULL, SP_CHAN_SEND, &wa, 0}};
        int64_t dl = some_deadline(&rng);
        errno = 0;
        int r = sp_select(c, 5, dl);
        if (r < 0) {
            if (errno == ETIMEDOUT || (errno == EAGAIN && dl == 0))
                atomic_fetch_add(&Z.timeouts, 1);
            else
                atomic_fetch_add(&Z.bad_ret, 1);
        } else if (r > 4 || c[r].err != 0) {
            atomic_fetch_add(&Z.bad_ret, 1);
        } else {
            atomic_fetch_add(&Z.fired[r], 1);
        }
        if (r == 0)
            mark(Z.got, va);
        else if (r == 1)
            mark(Z.got, vb);
        else if (r == 2)
            mark(Z.got, vc);
        else if (r == 3)
            mark(Z.sent, wd);
        else if (r == 4)
            mark(Z.sent, wa);
        /* A value in the case performed, and only there. */
        uint32_t vals[3] = {va, vb, vc};
        for (int k = 0; k < 3; k++)
            if ((k == r) != (vals[k] != 0))
                atomic_fetch_add(&Z.wrote_other, 1);
        if (r == 0 && va == wa && wa)
            atomic_fetch_add(&Z.self_sends, 1);
        mn_note(&local);
    }
    return NULL;
}

static void *sender(void *arg)
{
    uint32_t rng = mn_seed((uint32_t)PI(arg) + 101);
    while (!atomic_load(&Z.stop)) {
        uint32_t v = fresh(), w = fresh();
        if (!v || !w)
            break;
        int64_t dl = some_deadline(&rng);
        switch (mn_rand(&rng) % 4) {
        case 0:
            if (sp_chan_send(Z.a, &v, dl) == 0)
                mark(Z.sent, v);
            break;
        case 1:
            if (sp_chan_send(Z.b, &v, dl) == 0)
                mark(Z.sent, v);
            break;
        case 2:
            if (sp_chan_send(Z.c, &v, dl) == 0)
                mark(Z.sent, v);
            break;
        default: {
            /* A select meeting selectors: both sides have several nodes. */
            sp_select_case c[] = {{Z.a, SP_CHAN_SEND, &v, 0}, {Z.b, SP_CHAN_SEND, &w, 0}};
            int r = sp_select(c, 2, dl);
            if (r == 0)
                mark(Z.sent, v);
            else if (r == 1)
                mark(Z.sent, w);
            else if (errno != ETIMEDOUT && !(errno == EAGAIN && dl == 0))
                atomic_fetch_add(&Z.bad_ret, 1);
        }
        }
    }
    return NULL;
}

static void *drainer(void *arg)
{
    while (!atomic_load(&Z.stop)) {
        uint32_t v = 0;
        if (sp_chan_recv(Z.d, &v, sp_deadline_ms(1)) == 0)
            mark(Z.got, v);
    }
    return NULL;
}

static void *role(void *arg)
{
    int i = (int)PI(arg);
    if (i < SELECTORS)
        return selector(arg);
    if (i < SELECTORS + SENDERS)
        return sender(arg);
    return drainer(arg);
}

static void select_each(int slot, int nslots)
{
    spawn_share(role, SELECTORS + SENDERS + DRAINERS, slot, nslots);
}

static void *select_main(void *arg)
{
    int workers = (int)PI(arg);
    Z.a = sp_chan_make(sizeof(uint32_t), 0);
    Z.b = sp_chan_make(sizeof(uint32_t), 0);
    Z.c = sp_chan_make(sizeof(uint32_t), 2);
    Z.d = sp_chan_make(sizeof(uint32_t), 0);
    atomic_store(&Z.next_val, 1);
    atomic_store(&mn_seen, 0);
    if (!mn_all_workers_up(workers, select_each))
        return IP(-100);
    /* The selectors end on their own; then the others are told to. */
    int n = atomic_load(&mn_nspawned);
    long bad = 0;
    for (int i = 0; i < n; i++)
        if (!mn_spawned[i])
            bad++;
    for (;;) {
        /* mn_spawned holds them in spawn order, not role order: wait for
         * the selectors by their count of selects instead. */
        long done = atomic_load(&Z.timeouts) + atomic_load(&Z.bad_ret);
        for (int r = 0; r < 5; r++)
            done += atomic_load(&Z.fired[r]);
        if (done >= (long)SELECTORS * ITERS)
            break;
        sp_sleep_ms(1);
    }
    atomic_store(&Z.stop, 1);
    bad += join_spawned();
    uint32_t v;
    while (sp_chan_recv(Z.c, &v, 0) == 0)
        mark(Z.got, v);
    sp_chan_free(Z.a);
    sp_chan_free(Z.b);
    sp_chan_free(Z.c);
    sp_chan_free(Z.d);
    return IP(bad);
}

static void run_select(int workers)
{
    memset(&Z, 0, sizeof Z);
    void *r = mn_run(select_main, IP(workers), workers);
    CHECK_EQ(PI(r), 0, "coroutines that failed to spawn or join (%d workers)", workers);
    CHECK_EQ(atomic_load(&Z.bad_ret), 0, "selects that returned neither one case nor "
             "ETIMEDOUT/EAGAIN (%d workers)", workers);
    CHECK_EQ(atomic_load(&Z.wrote_other), 0, "selects that wrote a value for a case they did "
             "not perform, or none for the one they did (%d workers)", workers);
    CHECK_EQ(atomic_load(&Z.self_sends), 0, "selects whose send case met their own receive "
             "case (%d workers)", workers);
    uint32_t n = atomic_load(&Z.next_val);
    mn_check_ledger(Z.sent, Z.got, n < MAXV ? n : MAXV, workers);
    long fired = 0;
    for (int k = 0; k < 5; k++)
        fired += atomic_load(&Z.fired[k]);
    CHECK_TRUE(fired > 0 && atomic_load(&Z.timeouts) > 0, "both outcomes happened: %ld cases "
               "fired, %ld timeouts", fired, atomic_load(&Z.timeouts));
    print_message("%d workers: cases fired %ld/%ld/%ld/%ld/%ld, %ld timeouts, workers %#llx\n",
                  workers, atomic_load(&Z.fired[0]), atomic_load(&Z.fired[1]),
                  atomic_load(&Z.fired[2]), atomic_load(&Z.fired[3]), atomic_load(&Z.fired[4]),
                  atomic_load(&Z.timeouts), (unsigned long long)atomic_load(&mn_seen));
}

static void test_select_2(void **state) { run_select(2); }
static void test_select_4(void **state) { run_select(4); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_2),
        cmocka_unit_test(test_select_4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
