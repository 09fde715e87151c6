/* accept, accept4 and connect inside coroutines: accept parks until a
 * connection comes, connect parks until the handshake is done, refusals
 * come back as libc reports them, and the accepted socket is blocking or
 * not as the flags said. */
#include "hook_test.h"

static int lfd;
static struct sockaddr_in laddr;
static int client_rc, client_err;

static void *late_client(void *unused)
{
    usleep(15000);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    client_rc = connect(c, (struct sockaddr *)&laddr, sizeof laddr);
    client_err = errno;
    if (client_rc == 0)
        assert_int_equal(write(c, "hi", 2), 2);
    close(c);
    return NULL;
}

static void *accept_parks(void *unused)
{
    lfd = hook_listener(16, &laddr);
    sp_co *t = hook_ticker_start();
    sp_co *c = sp_spawn(late_client, NULL, NULL);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int64_t t0 = sp_now();
    int fd = accept(lfd, (struct sockaddr *)&peer, &plen);
    int64_t ms = hook_ms_since(t0);
    long ticks = hook_ticks;
    assert_true(fd >= 0);
    assert_int_equal(plen, sizeof peer);
    assert_int_equal(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_true(ms >= 10);
    assert_true(ticks >= 1);
    char b[4];
    assert_int_equal(read(fd, b, sizeof b), 2);
    /* Blocking, as accept makes it, in the program's eyes only. */
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_true(hook_real_nonblock(fd));
    sp_join(c, NULL);
    assert_int_equal(client_rc, 0);
    hook_ticker_stop(t);
    close(fd);
    close(lfd);
    return NULL;
}

static void test_accept_parks(void **state)
{
    hook_run(SP_HOOK_ON, accept_parks, NULL);
}

static void *accept4_nonblock(void *unused)
{
    lfd = hook_listener(16, &laddr);
    sp_co *t = hook_ticker_start();
    sp_co *c = sp_spawn(late_client, NULL, NULL);
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    sp_join(c, NULL); /* wrote "hi" and closed */
    char b[4];
    assert_int_equal(read(fd, b, sizeof b), 2);
    assert_int_equal(read(fd, b, sizeof b), 0);
    close(fd);
    /* A fresh non-blocking one with nothing to read: EAGAIN, at once. */
    c = sp_spawn(late_client, NULL, NULL);
    int fd2 = -1;
    struct pollfd p = {lfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 10000), 1);
    fd2 = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    assert_true(fd2 >= 0);
    long ticks = hook_ticks; /* not the clock: a preempted thread loses time too */
    ssize_t n = recv(fd2, b, sizeof b, MSG_PEEK);
    assert_true(n == 2 || (n == -1 && errno == EAGAIN));
    assert_int_equal(hook_ticks, ticks); /* did not park */
    sp_join(c, NULL);
    hook_ticker_stop(t);
    close(fd2);
    close(lfd);
    return NULL;
}

static void test_accept4_nonblock(void **state)
{
    hook_run(SP_HOOK_ON, accept4_nonblock, NULL);
}

static void *connect_refused(void *unused)
{
    /* A port that was just free: bound, never listened on, closed. */
    struct sockaddr_in a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    close(l);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(c);
    /* And one that is there: 0, the socket usable at once. */
    lfd = hook_listener(4, &laddr);
    c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&laddr, sizeof laddr), 0);
    assert_int_equal(write(c, "ok", 2), 2);
    int s = accept(lfd, NULL, NULL);
    char b[2];
    assert_int_equal(read(s, b, 2), 2);
    close(s);
    close(c);
    close(lfd);
    return NULL;
}

static void test_connect_refused_and_ok(void **state)
{
    hook_run(SP_HOOK_ON, connect_refused, NULL);
}

/* Many clients and one acceptor, each side a coroutine. */
#define NCLIENTS 200
static int served;

static void *echo_client(void *unused)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&laddr, sizeof laddr), 0);
    assert_int_equal(write(c, "abc", 3), 3);
    char b[3];
    assert_int_equal(read(c, b, 3), 3);
    assert_memory_equal(b, "abc", 3);
    close(c);
    return NULL;
}

static void *echo_conn(void *arg)
{
    int fd = (int)PI(arg);
    char b[16];
    ssize_t n = read(fd, b, sizeof b);
    assert_int_equal(write(fd, b, (size_t)n), n);
    close(fd);
    served++;
    return NULL;
}

static void *many(void *unused)
{
    lfd = hook_listener(NCLIENTS, &laddr);
    sp_co *cl[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        cl[i] = sp_spawn(echo_client, NULL, NULL);
    sp_co_attr det = {.detached = 1};
    for (int i = 0; i < NCLIENTS; i++) {
        int fd = accept(lfd, NULL, NULL);
        assert_true(fd >= 0);
        sp_spawn(echo_conn, IP(fd), &det);
    }
    for (int i = 0; i < NCLIENTS; i++)
        sp_join(cl[i], NULL);
    close(lfd);
    return NULL;
}

static void test_many_connections(void **state)
{
    served = 0;
    hook_run(SP_HOOK_ON, many, NULL);
    assert_int_equal(served, NCLIENTS);
}

/* ---- when an accepted socket becomes non-blocking underneath ---- */

static int born_nb;

static void *accept_one(void *unused)
{
    lfd = hook_listener(4, &laddr);
    sp_co *c = sp_spawn(late_client, NULL, NULL);
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    born_nb = hook_real_nonblock(fd);
    sp_join(c, NULL);
    close(fd);
    close(lfd);
    return NULL;
}

static void test_accepted_nonblocking_when(void **state)
{
    /* Threads stay threads: the socket is likely handed to one, and stays
     * truly blocking until a coroutine parks on it. */
    hook_run(SP_HOOK_ON, accept_one, NULL);
    assert_false(born_nb);
    /* Threads are coroutines: only coroutines will use it. */
    hook_run(SP_HOOK_ON | SP_HOOK_THREADS, accept_one, NULL);
    assert_true(born_nb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_parks),
        cmocka_unit_test(test_accept4_nonblock),
        cmocka_unit_test(test_connect_refused_and_ok),
        cmocka_unit_test(test_many_connections),
        cmocka_unit_test(test_accepted_nonblocking_when),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
