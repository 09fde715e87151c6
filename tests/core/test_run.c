/* sp_run returns once main and every coroutine it left behind have ended;
 * configuration errors are refused. */
#include "sp_test.h"

static int ended;

static void *straggler(void *arg)
{
    for (int i = 0; i < (int)PI(arg); i++)
        sp_yield();
    ended++;
    return NULL;
}

static void *main_fn(void *arg)
{
    sp_co_attr d = {.detached = 1};
    for (int i = 0; i < 10; i++)
        sp_spawn(straggler, IP(i * 3), &d);
    return IP(99);
}

static void test_run_waits_for_all(void **state)
{
    void *r = NULL;
    assert_int_equal(sp_run(NULL, main_fn, NULL, &r), 0);
    assert_int_equal(PI(r), 99);
    assert_int_equal(ended, 10);
}

static void test_bad_environment_refused(void **state)
{
    sp_config cfg;
    setenv("SPINDLE_CTX", "nonsense", 1);
    assert_int_equal(sp_config_init(&cfg), -EINVAL);
    unsetenv("SPINDLE_CTX");
    setenv("SPINDLE_STACK", "huge", 1);
    assert_int_equal(sp_config_init(&cfg), -EINVAL);
    unsetenv("SPINDLE_STACK");
    setenv("SPINDLE_SWITCH", "sideways", 1);
    assert_int_equal(sp_config_init(&cfg), -EINVAL);
    unsetenv("SPINDLE_SWITCH");
}

static void test_thread_init_after_start_is_ebusy(void **state)
{
    sp_config cfg;
    sp_config_init(&cfg);
    sp_yield(); /* the scheduler of this thread exists now */
    assert_int_equal(sp_thread_init(&cfg), -EBUSY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_waits_for_all),
        cmocka_unit_test(test_bad_environment_refused),
        cmocka_unit_test(test_thread_init_after_start_is_ebusy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
