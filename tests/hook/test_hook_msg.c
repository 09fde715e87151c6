/* recv, recvfrom, recvmsg, send, sendto, sendmsg inside coroutines: they
 * park where the blocking call would wait, MSG_WAITALL waits for the whole
 * count, and descriptors passed with SCM_RIGHTS can be parked on too. */
#include "hook_test.h"

#include <sys/uio.h>

static int tcp[2];

static void *trickle(void *unused)
{
    static char chunk[100];
    for (int i = 0; i < 3; i++) {
        usleep(5000);
        memset(chunk, 'a' + i, sizeof chunk);
        assert_int_equal(send(tcp[1], chunk, sizeof chunk, 0), (ssize_t)sizeof chunk);
    }
    return NULL;
}

static void *recv_parks(void *unused)
{
    hook_tcp_pair(tcp);
    sp_co *t = hook_ticker_start();
    sp_co *w = sp_spawn(trickle, NULL, NULL);
    char b[300];
    ssize_t n = recv(tcp[0], b, 50, 0); /* parks, then gets what came */
    assert_int_equal(n, 50);
    /* MSG_WAITALL: the rest of the three pieces, 250 bytes, in one call. */
    n = recv(tcp[0], b, 250, MSG_WAITALL);
    assert_int_equal(n, 250);
    assert_int_equal(b[49], 'a');
    assert_int_equal(b[50], 'b');
    assert_int_equal(b[249], 'c');
    sp_join(w, NULL);
    long ticks = hook_ticks;
    hook_ticker_stop(t);
    assert_true(ticks >= 1);
    close(tcp[0]);
    close(tcp[1]);
    return NULL;
}

static void test_recv_parks_and_waitall(void **state)
{
    hook_run(SP_HOOK_ON, recv_parks, NULL);
}

/* ---- datagrams ---- */

static int u[2];
static struct sockaddr_in ua[2];

static void *udp_sender(void *unused)
{
    usleep(5000);
    const char *m = "datagram";
    assert_int_equal(sendto(u[1], m, strlen(m), 0, (struct sockaddr *)&ua[0], sizeof ua[0]),
                     (ssize_t)strlen(m));
    usleep(5000);
    struct iovec iov[2] = {{"two ", 4}, {"parts", 5}};
    struct msghdr mh = {.msg_name = &ua[0], .msg_namelen = sizeof ua[0], .msg_iov = iov,
                        .msg_iovlen = 2};
    assert_int_equal(sendmsg(u[1], &mh, 0), 9);
    return NULL;
}

static void *udp(void *unused)
{
    for (int i = 0; i < 2; i++) {
        u[i] = socket(AF_INET, SOCK_DGRAM, 0);
        ua[i] = (struct sockaddr_in){.sin_family = AF_INET,
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof ua[i];
        assert_int_equal(bind(u[i], (struct sockaddr *)&ua[i], sizeof ua[i]), 0);
        assert_int_equal(getsockname(u[i], (struct sockaddr *)&ua[i], &len), 0);
    }
    sp_co *s = sp_spawn(udp_sender, NULL, NULL);
    char b[64];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(u[0], b, sizeof b, 0, (struct sockaddr *)&from, &flen);
    assert_int_equal(n, 8);
    assert_memory_equal(b, "datagram", 8);
    assert_int_equal(from.sin_port, ua[1].sin_port);
    struct iovec iov = {b, sizeof b};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
                        .msg_iovlen = 1};
    n = recvmsg(u[0], &mh, 0);
    assert_int_equal(n, 9);
    assert_memory_equal(b, "two parts", 9);
    sp_join(s, NULL);
    close(u[0]);
    close(u[1]);
    return NULL;
}

static void test_udp_recvfrom_recvmsg(void **state)
{
    hook_run(SP_HOOK_ON, udp, NULL);
}

/* ---- a blocking send of more than the socket holds ---- */

#define BIG (3u << 20)
static char *big;

static void *sink(void *unused)
{
    static char b[65536];
    size_t n = 0;
    while (n < BIG) {
        ssize_t r = recv(tcp[1], b, sizeof b, 0);
        assert_true(r > 0);
        n += (size_t)r;
    }
    return NULL;
}

static void *send_all(void *unused)
{
    hook_tcp_pair(tcp);
    sp_co *s = sp_spawn(sink, NULL, NULL);
    assert_int_equal(send(tcp[0], big, BIG, 0), (ssize_t)BIG);
    sp_join(s, NULL);
    s = sp_spawn(sink, NULL, NULL);
    /* And sendmsg, in two pieces, resuming inside the vector. */
    struct iovec iov[2] = {{big, BIG / 3}, {big + BIG / 3, BIG - BIG / 3}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    assert_int_equal(sendmsg(tcp[0], &mh, 0), (ssize_t)BIG);
    sp_join(s, NULL);
    close(tcp[0]);
    close(tcp[1]);
    return NULL;
}

static void test_send_sendmsg_move_all(void **state)
{
    big = calloc(1, BIG);
    hook_run(SP_HOOK_ON, send_all, NULL);
    free(big);
}

/* ---- a descriptor that arrives over a socket ---- */

static int unix_sv[2], passed[2];

static void *pass_writer(void *unused)
{
    usleep(10000);
    assert_int_equal(write(passed[1], "via", 3), 3);
    return NULL;
}

static void *scm_rights(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, unix_sv), 0);
    /* Made past the hooks: the table has never heard of these numbers. */
    assert_int_equal((int)syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, passed), 0);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {"x", 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed[0], sizeof(int));
    assert_int_equal(sendmsg(unix_sv[0], &mh, 0), 1);

    char one;
    char rbuf[CMSG_SPACE(sizeof(int))];
    struct iovec riov = {&one, 1};
    struct msghdr rh = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf,
                        .msg_controllen = sizeof rbuf};
    assert_int_equal(recvmsg(unix_sv[1], &rh, 0), 1);
    int got;
    memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&rh)), sizeof got);
    /* A socket of unknown origin is adopted on first use and parked on. */
    sp_co *t = hook_ticker_start();
    sp_co *w = sp_spawn(pass_writer, NULL, NULL);
    char b[8];
    assert_int_equal(read(got, b, sizeof b), 3);
    long ticks = hook_ticks;
    hook_ticker_stop(t);
    sp_join(w, NULL);
    assert_true(ticks >= 1);
    assert_memory_equal(b, "via", 3);
    close(got);
    close(passed[0]);
    close(passed[1]);
    close(unix_sv[0]);
    close(unix_sv[1]);
    return NULL;
}

static void test_scm_rights_adopted(void **state)
{
    hook_run(SP_HOOK_ON, scm_rights, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recv_parks_and_waitall),
        cmocka_unit_test(test_udp_recvfrom_recvmsg),
        cmocka_unit_test(test_send_sendmsg_move_all),
        cmocka_unit_test(test_scm_rights_adopted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
