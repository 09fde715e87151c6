/* poll and select inside coroutines: they park until one of the
 * descriptors is ready or the timeout passes, and answer exactly as libc
 * does (revents, POLLNVAL, cleared sets, the time left in *timeout). */
#include "hook_test.h"

#include <sys/select.h>
#include <stdlib.h>

static int pair[3][2];

static void *poke_second(void *unused)
{
    usleep(15000);
    assert_int_equal(write(pair[1][1], "x", 1), 1);
    return NULL;
}

static void *poll_parks(void *unused)
{
    for (int i = 0; i < 3; i++)
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair[i]), 0);
    sp_co *t = hook_ticker_start();
    sp_co *w = sp_spawn(poke_second, NULL, NULL);
    struct pollfd p[4] = {{pair[0][0], POLLIN, 0}, {-1, POLLIN, 0},
                          {pair[1][0], POLLIN, 0}, {pair[2][0], POLLIN | POLLPRI, 0}};
    int64_t t0 = sp_now();
    assert_int_equal(poll(p, 4, 5000), 1);
    assert_true(hook_ms_since(t0) >= 10);
    assert_true(hook_ticks >= 1);
    assert_int_equal(p[0].revents, 0);
    assert_int_equal(p[1].revents, 0);
    assert_int_equal(p[2].revents, POLLIN);
    assert_int_equal(p[3].revents, 0);
    sp_join(w, NULL);

    /* Timeout: 0 after the time, others ran meanwhile. */
    long before = hook_ticks;
    t0 = sp_now();
    struct pollfd q = {pair[0][0], POLLIN, 0};
    assert_int_equal(poll(&q, 1, 30), 0);
    assert_true(hook_ms_since(t0) >= 29);
    assert_true(hook_ticks - before >= 1);

    /* No descriptors: a sleep. */
    t0 = sp_now();
    assert_int_equal(poll(NULL, 0, 20), 0);
    assert_true(hook_ms_since(t0) >= 19);
    hook_ticker_stop(t);

    /* A closed descriptor: POLLNVAL at once, counted. */
    int dead = pair[2][0];
    close(dead);
    struct pollfd n = {dead, POLLIN, 0};
    assert_int_equal(poll(&n, 1, 1000), 1);
    assert_int_equal(n.revents, POLLNVAL);
    for (int i = 0; i < 3; i++) {
        close(pair[i][1]);
        if (i < 2)
            close(pair[i][0]);
    }
    return NULL;
}

static void test_poll_parks(void **state)
{
    hook_run(SP_HOOK_ON, poll_parks, NULL);
}

/* ---- POLLOUT on a full socket ---- */

static int full[2];

static void *drainer(void *unused)
{
    usleep(10000);
    static char b[1 << 16];
    while (recv(full[1], b, sizeof b, MSG_DONTWAIT) > 0)
        ;
    return NULL;
}

static void *pollout_parks(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, full), 0);
    static char blob[1 << 16];
    while (send(full[0], blob, sizeof blob, MSG_DONTWAIT) > 0)
        ;
    assert_int_equal(errno, EAGAIN);
    sp_co *d = sp_spawn(drainer, NULL, NULL);
    struct pollfd p = {full[0], POLLOUT, 0};
    int64_t t0 = sp_now();
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_true(p.revents & POLLOUT);
    assert_true(hook_ms_since(t0) >= 5);
    sp_join(d, NULL);
    close(full[0]);
    close(full[1]);
    return NULL;
}

static void test_pollout_parks(void **state)
{
    hook_run(SP_HOOK_ON, pollout_parks, NULL);
}

/* ---- another coroutine closes what poll waits on ---- */

static void *close_it(void *unused)
{
    usleep(5000);
    close(pair[0][0]);
    return NULL;
}

static void *poll_closed_meanwhile(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair[0]), 0);
    sp_co *c = sp_spawn(close_it, NULL, NULL);
    struct pollfd p = {pair[0][0], POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(p.revents, POLLNVAL);
    sp_join(c, NULL);
    close(pair[0][1]);
    return NULL;
}

static void test_poll_closed_meanwhile(void **state)
{
    hook_run(SP_HOOK_ON, poll_closed_meanwhile, NULL);
}

/* ---- a regular file is always ready ---- */

static void *poll_file(void *unused)
{
    char path[] = "/tmp/sp_hook_pollXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    struct pollfd p = {fd, POLLIN | POLLOUT, 0};
    assert_int_equal(poll(&p, 1, -1), 1);
    assert_int_equal(p.revents, POLLIN | POLLOUT);
    close(fd);
    return NULL;
}

static void test_poll_regular_file(void **state)
{
    hook_run(SP_HOOK_ON, poll_file, NULL);
}

/* ---- select ---- */

static void *select_parks(void *unused)
{
    for (int i = 0; i < 2; i++)
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair[i]), 0);
    sp_co *t = hook_ticker_start();
    sp_co *w = sp_spawn(poke_second, NULL, NULL);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(pair[0][0], &r);
    FD_SET(pair[1][0], &r);
    int nfds = (pair[0][0] > pair[1][0] ? pair[0][0] : pair[1][0]) + 1;
    struct timeval tv = {5, 0};
    assert_int_equal(select(nfds, &r, NULL, NULL, &tv), 1);
    assert_false(FD_ISSET(pair[0][0], &r));
    assert_true(FD_ISSET(pair[1][0], &r));
    assert_true(tv.tv_sec < 5 || tv.tv_usec < 1000000); /* the time left */
    assert_true(hook_ticks >= 1);
    sp_join(w, NULL);

    /* Timeout: 0, every set cleared, no time left. */
    FD_ZERO(&r);
    FD_SET(pair[0][0], &r);
    fd_set wr;
    FD_ZERO(&wr);
    tv = (struct timeval){0, 30000};
    int64_t t0 = sp_now();
    assert_int_equal(select(nfds, &r, &wr, NULL, &tv), 0);
    assert_true(hook_ms_since(t0) >= 29);
    assert_false(FD_ISSET(pair[0][0], &r));
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 0);

    /* Writable at once. */
    FD_ZERO(&wr);
    FD_SET(pair[0][0], &wr);
    tv = (struct timeval){1, 0};
    assert_int_equal(select(nfds, NULL, &wr, NULL, &tv), 1);
    assert_true(FD_ISSET(pair[0][0], &wr));

    /* A closed descriptor in a set: EBADF, as libc says. */
    int dead = pair[1][0];
    close(dead);
    FD_ZERO(&r);
    FD_SET(dead, &r);
    tv = (struct timeval){1, 0};
    assert_int_equal(select(dead + 1, &r, NULL, NULL, &tv), -1);
    assert_int_equal(errno, EBADF);
    /* A bad timeout: EINVAL (Linux takes tv_usec past a second as more
     * seconds, but nothing negative). */
    tv = (struct timeval){-1, 0};
    FD_ZERO(&r);
    FD_SET(pair[0][0], &r);
    assert_int_equal(select(nfds, &r, NULL, NULL, &tv), -1);
    assert_int_equal(errno, EINVAL);
    hook_ticker_stop(t);
    close(pair[0][0]);
    close(pair[0][1]);
    close(pair[1][1]);
    return NULL;
}

static void test_select_parks(void **state)
{
    hook_run(SP_HOOK_ON, select_parks, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_parks),
        cmocka_unit_test(test_pollout_parks),
        cmocka_unit_test(test_poll_closed_meanwhile),
        cmocka_unit_test(test_poll_regular_file),
        cmocka_unit_test(test_select_parks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
