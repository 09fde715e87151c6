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

/* Sets name=bad, checks sp_config_init refuses it, and puts back whatever
 * the test runner had set (the matrix sets these variables). */
static void refuses(const char *name, const char *bad)
{
    const char *was = getenv(name);
    char *saved = was ? strdup(was) : NULL;
    sp_config cfg;
    setenv(name, bad, 1);
    assert_int_equal(sp_config_init(&cfg), -EINVAL);
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static void test_bad_environment_refused(void **state)
{
    refuses("SPINDLE_CTX", "nonsense");
    refuses("SPINDLE_STACK", "huge");
    refuses("SPINDLE_SWITCH", "sideways");
    refuses("SPINDLE_POLL", "kqueue");
    refuses("SPINDLE_FPENV", "maybe");
}

static void *one(void *arg) { return IP(1); }

static void test_thread_init_after_start_is_ebusy(void **state)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.workers = 1; /* this thread's own scheduler, not M:N */
    sp_yield(); /* the scheduler of this thread exists now */
    assert_int_equal(sp_thread_init(&cfg), -EBUSY);
    /* sp_run with the configuration in force runs; with another it says so. */
    void *r = NULL;
    assert_int_equal(sp_run(&cfg, one, NULL, &r), 0);
    assert_int_equal(PI(r), 1);
    cfg.switch_mode = cfg.switch_mode == SP_SWITCH_STAR ? SP_SWITCH_DIRECT : SP_SWITCH_STAR;
    assert_int_equal(sp_run(&cfg, one, NULL, &r), -EBUSY);
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
