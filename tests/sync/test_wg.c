/* sp_wg: waiters wake when the counter reaches 0, and not before; a
 * counter at 0 does not wait; going negative aborts. */
#include "sync_test.h"

static sp_wg wg = SP_WG_INIT;
static int finished;

static void *job(void *arg)
{
    for (long i = 0; i < PI(arg); i++)
        sp_yield();
    finished++;
    sp_wg_done(&wg);
    return NULL;
}

static void *waiter(void *arg)
{
    int rc = sp_wg_wait(&wg, -1);
    return IP(rc == 0 ? finished : -1);
}

static void test_waits_for_all(void **state)
{
    finished = 0;
    CHECK_OK(sp_wg_wait(&wg, 0), "wait on a group at 0");
    sp_wg_add(&wg, 100);
    sp_co_attr d = {.detached = 1};
    for (int i = 0; i < 100; i++)
        sp_spawn(job, IP(i % 13), &d);
    /* Two coroutines wait besides the root: all three see 100 done. */
    sp_co *w1 = sp_spawn(waiter, NULL, NULL), *w2 = sp_spawn(waiter, NULL, NULL);
    CHECK_FAILS(sp_wg_wait(&wg, 0), EAGAIN, "wait, deadline 0, jobs running");
    CHECK_OK(sp_wg_wait(&wg, -1), "the root's wait");
    CHECK_EQ(finished, 100, "jobs finished when the root's wait returned");
    void *r1, *r2;
    sp_join(w1, &r1);
    sp_join(w2, &r2);
    CHECK_EQ(PI(r1), 100, "jobs finished when waiter 1 woke");
    CHECK_EQ(PI(r2), 100, "jobs finished when waiter 2 woke");
}

static void test_reuse(void **state)
{
    /* A group goes back to 0 and is used again: add in steps, done in one. */
    sp_wg g;
    sp_wg_init(&g);
    for (int round = 0; round < 3; round++) {
        sp_wg_add(&g, 2);
        sp_wg_add(&g, 3);
        CHECK_FAILS(sp_wg_wait(&g, 0), EAGAIN, "round %d: wait at 5", round);
        sp_wg_add(&g, -5);
        CHECK_OK(sp_wg_wait(&g, 0), "round %d: wait at 0", round);
    }
}

static void negative(void *arg)
{
    sp_wg g = SP_WG_INIT;
    sp_wg_add(&g, 1);
    sp_wg_done(&g);
    sp_wg_done(&g);
}

static void test_negative_aborts(void **state)
{
    int status;
    char err[512];
    assert_int_equal(sp_test_child(negative, NULL, &status, err, sizeof err), 0);
    CHECK_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
               "a wait group going negative should abort; status %#x", status);
    CHECK_TRUE(strstr(err, "negative") != NULL, "the message should say negative: '%s'", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waits_for_all),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_negative_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
