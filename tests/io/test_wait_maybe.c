/* sp_wait_fd with SP_MAYBE trusts the runtime's ready bits instead of
 * asking the kernel: it must still wake for data that comes later, for
 * data that came while nobody waited, and for a FIN; and it must time out
 * when nothing comes. */
#include "sp_test.h"
#include <pthread.h>
#include <unistd.h>

static void *write_later(void *arg)
{
    int fd = (int)PI(arg);
    usleep(20000); /* the waiter is parked by now */
    ssize_t w = write(fd, "later", 5);
    (void)w;
    return NULL;
}

static void *write_and_close(void *arg)
{
    int fd = (int)PI(arg);
    usleep(20000);
    ssize_t w = write(fd, "bye", 3);
    (void)w;
    close(fd); /* data and FIN, back to back */
    return NULL;
}

/* Waits with SP_MAYBE, then reads: expects `want` bytes (0: the EOF). */
static void wait_then_read(int s, ssize_t want, const char *what)
{
    char buf[64];
    int r = sp_wait_fd(s, SP_READ | SP_MAYBE, sp_deadline_ms(10000));
    if (r != SP_READ)
        fail_msg("%s: wait returned %d (%s), expected SP_READ", what, r,
                 r < 0 ? strerror(errno) : "");
    ssize_t n = sp_read(s, buf, sizeof buf, sp_deadline_ms(10000));
    if (n != want)
        fail_msg("%s: read %zd (%s), expected %zd", what, n, n < 0 ? strerror(errno) : "",
                 want);
}

static void test_tcp(void **state)
{
    int s, c;
    int l = sp_test_tcp_pair(&s, &c);
    assert_true(l >= 0);
    pthread_t t;

    /* data before the first wait (not yet registered: the poll finds it) */
    assert_int_equal(write(c, "first", 5), 5);
    wait_then_read(s, 5, "data before the first wait");
    /* drained: the wait parks without asking, and the edge wakes it */
    pthread_create(&t, NULL, write_later, IP(c));
    wait_then_read(s, 5, "data after the wait began");
    pthread_join(t, NULL);
    /* data that arrived while nobody waited, after a drain */
    assert_int_equal(write(c, "quiet", 5), 5);
    usleep(10000);
    wait_then_read(s, 5, "data that came while nobody waited");
    /* nothing comes: the deadline.  A wake may be unconfirmed (io_uring
     * can report data already read): the read then finds nothing, and
     * the next wait must not wake again for it. */
    int64_t until = sp_deadline_ms(50);
    int r = 0;
    for (int i = 0; i < 3; i++) {
        char buf[8];
        r = sp_wait_fd(s, SP_READ | SP_MAYBE, until);
        if (r < 0)
            break;
        ssize_t n = sp_read(s, buf, sizeof buf, 0);
        if (n != -1 || errno != ETIMEDOUT)
            fail_msg("an empty socket: read %zd after an unconfirmed wake, expected "
                     "ETIMEDOUT", n);
    }
    if (r != -1 || errno != ETIMEDOUT)
        fail_msg("an empty socket: wait returned %d (%s), expected ETIMEDOUT", r,
                 r < 0 ? strerror(errno) : "");
    /* data and FIN in one edge, then the EOF at once */
    pthread_create(&t, NULL, write_and_close, IP(c));
    wait_then_read(s, 3, "data before a FIN");
    wait_then_read(s, 0, "the FIN after the data");
    pthread_join(t, NULL);
    sp_close(s);
    sp_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
