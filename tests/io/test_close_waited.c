/* sp_close wakes whoever waits on the descriptor with EBADF, and events of
 * a closed descriptor do not reach the next owner of its number. */
#include "sp_test.h"
#include "io/io.h"
#include <sys/socket.h>
#include <unistd.h>

static void *waits(void *arg)
{
    char b[4];
    ssize_t n = sp_read((int)PI(arg), b, sizeof b, sp_deadline_ms(5000));
    return IP(n == -1 && errno == EBADF);
}

static void test_close_wakes_waiters(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    sp_co *a = sp_spawn(waits, IP(sv[0]), NULL);
    sp_co *b = sp_spawn(waits, IP(sv[0]), NULL); /* two readers, one fd */
    sp_yield();
    assert_int_equal(sp_close(sv[0]), 0);
    void *ra, *rb;
    sp_join(a, &ra);
    sp_join(b, &rb);
    assert_true(PI(ra));
    assert_true(PI(rb));
    close(sv[1]);
}

static void test_stale_event_not_delivered(void **state)
{
    /* Make fd readable so an event for it is (or will be) pending, close it
     * with sp_close, and get the same number for a new, idle socket: a wait
     * on the new one must run to its deadline, not wake on the old event. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int fd = sv[0];
    assert_int_equal(sp_wait_fd(fd, SP_WRITE, -1), SP_WRITE); /* registers it */
    assert_int_equal(write(sv[1], "x", 1), 1);
    sp_close(fd);
    int nv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, nv), 0);
    int reuse = nv[0] == fd ? nv[0] : nv[1];
    if (reuse != fd)
        skip(); /* the kernel handed out another number */
    sp__fd_fresh(sp__sched(), reuse, 0, 1);
    sp__fd_nonblock(sp__sched(), reuse);
    int err = sp__fd_wait(sp__sched(), reuse, SP__EV_IN, sp_deadline_ms(30));
    assert_int_equal(err, ETIMEDOUT);
    close(nv[0]);
    close(nv[1]);
    close(sv[1]);
}

static void test_wait_fd_reports_readiness(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(sp_wait_fd(sv[0], SP_READ | SP_WRITE, -1), SP_WRITE);
    assert_int_equal(sp_wait_fd(sv[0], SP_READ, sp_deadline_ms(10)), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(sp_wait_fd(sv[0], SP_READ, -1), SP_READ);
    assert_int_equal(sp_wait_fd(sv[0], 0, -1), -1);
    assert_int_equal(errno, EINVAL);
    sp_close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_wakes_waiters),
        cmocka_unit_test(test_stale_event_not_delivered),
        cmocka_unit_test(test_wait_fd_reports_readiness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
