/* Deadlines end waits with ETIMEDOUT; sp_cancel ends them with ECANCELED,
 * sticks, and reaches sleeps, reads and joins. */
#include "sp_test.h"
#include <sys/socket.h>
#include <unistd.h>

static void test_read_deadline(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char buf[8];
    int64_t t0 = sp_now();
    assert_int_equal(sp_read(sv[0], buf, sizeof buf, sp_deadline_ms(30)), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(sp_now() - t0 >= 30 * 1000000);
    /* Data already there is returned even past the deadline. */
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(sp_read(sv[0], buf, sizeof buf, sp_now() - 1), 1);
    sp_close(sv[0]);
    sp_close(sv[1]);
}

static void *blocked_reader(void *arg)
{
    int fd = (int)PI(arg);
    char buf[8];
    ssize_t n = sp_read(fd, buf, sizeof buf, -1);
    int e1 = errno;
    /* Cancellation sticks: the next blocking call fails at once. */
    int r2 = sp_sleep_ms(1000);
    int e2 = errno;
    return IP(n == -1 && e1 == ECANCELED && r2 == -1 && e2 == ECANCELED);
}

static void test_cancel_read(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    sp_co *co = sp_spawn(blocked_reader, IP(sv[0]), NULL);
    sp_sleep_ms(5);
    assert_int_equal(sp_cancel(co), 0);
    void *r;
    sp_join(co, &r);
    assert_true(PI(r));
    sp_close(sv[0]);
    sp_close(sv[1]);
}

static void *sleeps_long(void *arg)
{
    return IP(sp_sleep_ms(100000) == -1 && errno == ECANCELED);
}

static void *joins_forever(void *arg)
{
    int rc = sp_join(arg, NULL);
    return IP(rc == -1 && errno == ECANCELED);
}

static void test_cancel_sleep_and_join(void **state)
{
    sp_co *sl = sp_spawn(sleeps_long, NULL, NULL);
    sp_co *jn = sp_spawn(joins_forever, sl, NULL);
    sp_yield();
    assert_int_equal(sp_cancel(jn), 0);
    void *r;
    sp_join(jn, &r);
    assert_true(PI(r)); /* the join was interrupted, sl still runs */
    assert_int_equal(sp_cancel(sl), 0);
    sp_join(sl, &r);
    assert_true(PI(r));
}

static void *cancelled_before_start(void *arg)
{
    return IP(sp_canceled() && sp_sleep_ms(1) == -1 && errno == ECANCELED);
}

static void test_cancel_before_running(void **state)
{
    sp_co *co = sp_spawn(cancelled_before_start, NULL, NULL);
    assert_int_equal(sp_cancel(co), 0);
    void *r;
    sp_join(co, &r);
    assert_true(PI(r));
    errno = 0;
    assert_int_equal(sp_cancel(sp_self()), -1); /* the root */
    assert_int_equal(errno, EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_deadline),
        cmocka_unit_test(test_cancel_read),
        cmocka_unit_test(test_cancel_sleep_and_join),
        cmocka_unit_test(test_cancel_before_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
