/* sleep, usleep, nanosleep, clock_nanosleep inside coroutines park on the
 * scheduler's timers: sleepers overlap instead of adding up, each sleeps at
 * least what it asked, bad arguments fail as libc fails, and a cancelled
 * sleeper learns how much was left. */
#include "hook_test.h"

static int64_t slept[5], began[5], ended[5];

static void *s_sleep(void *unused)
{
    int64_t t0 = sp_now();
    assert_int_equal(sleep(1), 0);
    slept[0] = hook_ms_since(t0);
    began[0] = t0;
    ended[0] = sp_now();
    return NULL;
}

static void *s_usleep(void *unused)
{
    int64_t t0 = sp_now();
    assert_int_equal(usleep(300000), 0);
    slept[1] = hook_ms_since(t0);
    began[1] = t0;
    ended[1] = sp_now();
    return NULL;
}

static void *s_nanosleep(void *unused)
{
    int64_t t0 = sp_now();
    struct timespec req = {0, 300000000}, rem = {9, 9};
    assert_int_equal(nanosleep(&req, &rem), 0);
    slept[2] = hook_ms_since(t0);
    began[2] = t0;
    ended[2] = sp_now();
    return NULL;
}

static void *s_clock_rel(void *unused)
{
    int64_t t0 = sp_now();
    struct timespec req = {0, 300000000};
    assert_int_equal(clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL), 0);
    slept[3] = hook_ms_since(t0);
    began[3] = t0;
    ended[3] = sp_now();
    return NULL;
}

static void *s_clock_abs(void *unused)
{
    int64_t t0 = sp_now();
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 300000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_nsec -= 1000000000;
        until.tv_sec++;
    }
    assert_int_equal(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, NULL), 0);
    slept[4] = hook_ms_since(t0);
    began[4] = t0;
    ended[4] = sp_now();
    return NULL;
}

static void *overlap(void *unused)
{
    void *(*fn[5])(void *) = {s_sleep, s_usleep, s_nanosleep, s_clock_rel, s_clock_abs};
    sp_co *c[5];
    for (int i = 0; i < 5; i++)
        c[i] = sp_spawn(fn[i], NULL, NULL);
    for (int i = 0; i < 5; i++)
        sp_join(c[i], NULL);
    assert_true(slept[0] >= 999);
    for (int i = 1; i < 5; i++)
        assert_true(slept[i] >= 299);
    /* Every sleep began before the first one ended: they overlapped.  In a
     * row, each would begin after the one before it ended, however fast or
     * slow the machine. */
    int64_t first_end = INT64_MAX;
    for (int i = 0; i < 5; i++)
        if (ended[i] < first_end)
            first_end = ended[i];
    for (int i = 0; i < 5; i++)
        if (began[i] >= first_end)
            fail_msg("sleep %d began %lld ms after another ended: they did not overlap", i,
                     (long long)((began[i] - first_end) / 1000000));
    return NULL;
}

static void test_sleepers_overlap(void **state)
{
    hook_run(SP_HOOK_ON, overlap, NULL);
}

static void *bad_args(void *unused)
{
    struct timespec bad = {0, 1000000000};
    assert_int_equal(nanosleep(&bad, NULL), -1);
    assert_int_equal(errno, EINVAL);
    bad = (struct timespec){-1, 0};
    assert_int_equal(nanosleep(&bad, NULL), -1);
    assert_int_equal(errno, EINVAL);
    bad = (struct timespec){0, -5};
    assert_int_equal(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL), EINVAL);
    struct timespec zero = {0, 0};
    assert_int_equal(nanosleep(&zero, NULL), 0);
    assert_int_equal(usleep(0), 0);
    assert_int_equal(sleep(0), 0);
    return NULL;
}

static void test_bad_arguments(void **state)
{
    hook_run(SP_HOOK_ON, bad_args, NULL);
}

static struct timespec left;
static int sleep_rc, sleep_err;

static void *long_sleeper(void *unused)
{
    struct timespec req = {10, 0};
    sleep_rc = nanosleep(&req, &left);
    sleep_err = errno;
    return NULL;
}

static void *cancel_sleep(void *unused)
{
    sp_co *s = sp_spawn(long_sleeper, NULL, NULL);
    usleep(20000);
    assert_int_equal(sp_cancel(s), 0);
    sp_join(s, NULL);
    assert_int_equal(sleep_rc, -1);
    assert_int_equal(sleep_err, ECANCELED);
    assert_true(left.tv_sec >= 9 && left.tv_sec <= 10);
    return NULL;
}

static void test_cancelled_sleep(void **state)
{
    hook_run(SP_HOOK_ON, cancel_sleep, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleepers_overlap),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_cancelled_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
