/* sp_sem: at most n holders at once, FIFO service, and the counting edge
 * cases (deadline 0, a bad initial count, overflow). */
#include "sync_test.h"

static sp_sem sem = SP_SEM_INIT(3);
static int holders, max_holders, done;

static void *user(void *arg)
{
    for (int i = 0; i < 50; i++) {
        if (sp_sem_acquire(&sem, -1) != 0)
            return IP(-1);
        if (++holders > max_holders)
            max_holders = holders;
        sp_yield();
        holders--;
        sp_sem_release(&sem);
    }
    done++;
    return NULL;
}

static void test_counts_holders(void **state)
{
    sp_co *co[20];
    for (int i = 0; i < 20; i++)
        co[i] = sp_spawn(user, NULL, NULL);
    for (int i = 0; i < 20; i++) {
        void *r;
        sp_join(co[i], &r);
        CHECK_EQ(PI(r), 0, "user %d's result", i);
    }
    CHECK_EQ(max_holders, 3, "most holders of a 3-unit semaphore at once");
    CHECK_EQ(done, 20, "users that finished");
    /* All three units are back. */
    for (int i = 0; i < 3; i++)
        CHECK_OK(sp_sem_acquire(&sem, 0), "acquire unit %d, deadline 0", i);
    CHECK_FAILS(sp_sem_acquire(&sem, 0), EAGAIN, "a 4th acquire, deadline 0");
    for (int i = 0; i < 3; i++)
        sp_sem_release(&sem);
}

static int served[6], served_n;

static void *taker(void *arg)
{
    if (sp_sem_acquire(&sem, -1) != 0)
        return IP(-1);
    served[served_n++] = (int)PI(arg);
    return NULL;
}

static void test_fifo_and_no_barging(void **state)
{
    sp_sem s0;
    CHECK_FAILS(sp_sem_init(&s0, -1), EINVAL, "sp_sem_init with -1");
    CHECK_OK(sp_sem_init(&s0, 0), "sp_sem_init with 0");
    sem = s0;
    served_n = 0;
    sp_co *co[6];
    for (int i = 0; i < 6; i++)
        co[i] = sp_spawn(taker, IP(i), NULL);
    run_ready();
    /* One release: the unit goes to the first waiter, even though the root
     * asks for one right away. */
    sp_sem_release(&sem);
    CHECK_FAILS(sp_sem_acquire(&sem, 0), EAGAIN, "acquire right after a release to a waiter");
    for (int i = 1; i < 6; i++)
        sp_sem_release(&sem);
    for (int i = 0; i < 6; i++)
        sp_join(co[i], NULL);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(served[i], i, "waiter served %d-th", i);
}

static void test_overflow(void **state)
{
    sp_sem s = SP_SEM_INIT(LONG_MAX);
    CHECK_FAILS(sp_sem_release(&s), EOVERFLOW, "release past LONG_MAX");
    CHECK_OK(sp_sem_acquire(&s, 0), "acquire from a full semaphore");
    CHECK_OK(sp_sem_release(&s), "release back to LONG_MAX");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_holders),
        cmocka_unit_test(test_fifo_and_no_barging),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
