/* sp_cancel on every blocking sync call: a parked waiter wakes with
 * ECANCELED and leaves the primitive; a cancelled coroutine's later calls
 * fail at once where they would park and succeed where they need not. */
#include "blockers.h"

static int64_t blocked_deadline; /* -1: none */

static void *blocked(void *arg)
{
    return IP(block((int)PI(arg), blocked_deadline));
}

static void test_cancel_parked(void **state)
{
    b_setup();
    int64_t last_deadline = -1;
    for (int dl = 0; dl < 2; dl++)
        for (int k = 0; k < B_COUNT; k++) {
            /* Short deadlines, so that they pass within the test (below);
             * one that passed before the cancel came (a slow machine) ends
             * the wait rightly with ETIMEDOUT: then again, further out. */
            for (int64_t ms = 40;; ms *= 4) {
                blocked_deadline = dl ? sp_deadline_ms(ms) : -1;
                if (blocked_deadline > last_deadline)
                    last_deadline = blocked_deadline;
                sp_co *co = sp_spawn(blocked, IP(k), NULL);
                run_ready();
                int64_t cancel_at = sp_now();
                int rc = sp_cancel(co);
                void *r;
                sp_join(co, &r);
                if (dl && PI(r) == -ETIMEDOUT && cancel_at >= blocked_deadline && ms < 10000)
                    continue;
                CHECK_EQ(rc, 0, "sp_cancel of a coroutine parked in %s", b_name[k]);
                CHECK_EQ(PI(r), -ECANCELED, "%s%s, cancelled (-errno)", b_name[k],
                         dl ? " with a deadline" : "");
                CHECK_TRUE(unlinked(k), "%s: the primitive is free of the cancelled waiter",
                           b_name[k]);
                break;
            }
        }
    /* The cancelled waits' timers are gone with them: their deadlines pass
     * without touching the freed coroutines (ASan would see it). */
    sp_sleep_until(last_deadline + 10 * 1000000);
    b_teardown();
}

static void *cancelled_then_calls(void *arg)
{
    int kind = (int)PI(arg);
    sp_yield(); /* cancelled while ready */
    if (!sp_canceled())
        return IP(-1);
    int rc = block(kind, -1);
    if (rc != -ECANCELED)
        return IP(rc == 0 ? -2 : rc);
    /* What need not park still works: unwinding code may lock and send. */
    sp_mutex m = SP_MUTEX_INIT;
    sp_chan *ch = sp_chan_make(sizeof(int), 1);
    int v = 5;
    int ok = sp_mutex_lock(&m, -1) == 0 && sp_chan_send(ch, &v, -1) == 0 &&
             sp_chan_recv(ch, &v, -1) == 0 && v == 5;
    sp_mutex_unlock(&m);
    sp_chan_free(ch);
    return IP(ok ? 1 : -3);
}

static void test_cancelled_before_the_call(void **state)
{
    b_setup();
    for (int k = 0; k < B_COUNT; k++) {
        sp_co *co = sp_spawn(cancelled_then_calls, IP(k), NULL);
        CHECK_OK(sp_cancel(co), "sp_cancel of a ready coroutine");
        void *r;
        sp_join(co, &r);
        CHECK_EQ(PI(r), 1, "%s by a cancelled coroutine (1: ECANCELED at once and "
                 "non-blocking calls work; -2: it succeeded; -3: a non-blocking call "
                 "failed; else -errno)", b_name[k]);
        CHECK_TRUE(unlinked(k), "%s: nothing left behind", b_name[k]);
    }
    b_teardown();
}

static sp_mutex cm = SP_MUTEX_INIT;
static sp_cond cc = SP_COND_INIT;

static void *cond_cancel_waiter(void *arg)
{
    sp_mutex_lock(&cm, -1);
    int rc = sp_cond_wait(&cc, &cm, -1);
    int e = errno;
    /* The mutex is ours again, even though the root held it when we were
     * cancelled: the relock waited for it. */
    int held = sp_mutex_trylock(&cm) == -1 && errno == EBUSY;
    sp_mutex_unlock(&cm);
    return IP(rc == -1 && e == ECANCELED && held && sp_canceled());
}

static void test_cancel_cond_relocks(void **state)
{
    sp_co *co = sp_spawn(cond_cancel_waiter, NULL, NULL);
    run_ready();
    sp_mutex_lock(&cm, -1); /* the waiter released it */
    sp_cancel(co);
    run_ready(); /* it wakes and queues for the mutex we hold */
    /* Cancelling it again while it waits for the mutex must not make
     * sp_cond_wait return without it. */
    sp_cancel(co);
    run_ready();
    sp_mutex_unlock(&cm);
    void *r;
    sp_join(co, &r);
    CHECK_EQ(PI(r), 1, "cancelled cond wait: ECANCELED, mutex held on return, still cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_parked),
        cmocka_unit_test(test_cancelled_before_the_call),
        cmocka_unit_test(test_cancel_cond_relocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
