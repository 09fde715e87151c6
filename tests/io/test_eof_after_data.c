/* The peer's last data and its FIN can arrive in one edge: a short read of
 * that data must not make the next read wait for an edge that never comes;
 * it returns the EOF at once.  (A ready-bit optimisation once broke this.) */
#include "sp_test.h"
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

static void *write_and_close(void *arg)
{
    int fd = (int)PI(arg);
    usleep(20000); /* the reader is parked by now */
    ssize_t w = write(fd, "hello", 5);
    (void)w;
    close(fd);     /* data and FIN, back to back */
    return NULL;
}

static void check(int a, int b)
{
    pthread_t t;
    pthread_create(&t, NULL, write_and_close, IP(b));
    char buf[64];
    ssize_t n = sp_read(a, buf, sizeof buf, sp_deadline_ms(10000));
    assert_int_equal(n, 5);
    /* A read that waits for an edge never gets one: it times out (-1). */
    n = sp_read(a, buf, sizeof buf, sp_deadline_ms(10000));
    if (n != 0)
        fail_msg("expected EOF, got %zd (%s)", n, n < 0 ? strerror(errno) : "data");
    pthread_join(t, NULL);
    sp_close(a);
}

static void test_socketpair(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    check(sv[0], sv[1]);
}

/* The peer is a plain blocking socket the runtime never saw: with io_uring
 * a descriptor the runtime waits on must be closed with sp_close (a pending
 * poll keeps the file, and so the connection, open past a plain close). */
static void test_tcp(void **state)
{
    int s, c;
    int l = sp_test_tcp_pair(&s, &c);
    assert_true(l >= 0);
    check(s, c);
    sp_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socketpair),
        cmocka_unit_test(test_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
