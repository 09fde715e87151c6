/* SO_RCVTIMEO and SO_SNDTIMEO become deadlines for the calls that park,
 * with socket(7)'s answers: -1 and EAGAIN when nothing moved in time, the
 * count when something did, EINPROGRESS for connect.  The kernel would
 * ignore them on the non-blocking socket underneath; the program must not
 * notice. */
#include "hook_test.h"

static void set_timeo(int fd, int name, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, name, &tv, sizeof tv), 0);
}

static int tcp[2];

static void *late_writer(void *unused)
{
    usleep(20000);
    assert_int_equal(write(tcp[1], "late", 4), 4);
    return NULL;
}

static void *rcvtimeo(void *unused)
{
    hook_tcp_pair(tcp);
    set_timeo(tcp[0], SO_RCVTIMEO, 50);
    sp_co *t = hook_ticker_start();
    char b[8];
    int64_t t0 = sp_now();
    assert_int_equal(read(tcp[0], b, sizeof b), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(hook_ms_since(t0) >= 49);
    assert_true(hook_ticks >= 1); /* parked, not blocked */
    t0 = sp_now();
    assert_int_equal(recv(tcp[0], b, sizeof b, 0), -1);
    assert_int_equal(errno, EWOULDBLOCK);
    assert_true(hook_ms_since(t0) >= 49);
    /* The kernel keeps the value too: getsockopt reports it. */
    struct timeval tv;
    socklen_t len = sizeof tv;
    assert_int_equal(getsockopt(tcp[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
    assert_true(tv.tv_sec == 0 && tv.tv_usec >= 50000 && tv.tv_usec < 60000); /* in jiffies */
    /* Data that comes in time is returned.  The timeout is far longer than
     * the writer's 20 ms, so a stalled machine cannot make the data late. */
    set_timeo(tcp[0], SO_RCVTIMEO, 10000);
    sp_co *w = sp_spawn(late_writer, NULL, NULL);
    assert_int_equal(read(tcp[0], b, sizeof b), 4);
    sp_join(w, NULL);
    /* Zero turns it off again; a negative one means "do not wait".  Minus
     * 30 s: read as a length (its magnitude), it would wait past the bound. */
    set_timeo(tcp[0], SO_RCVTIMEO, 0);
    struct timeval neg = {-30, 0};
    assert_int_equal(setsockopt(tcp[0], SOL_SOCKET, SO_RCVTIMEO, &neg, sizeof neg), 0);
    t0 = sp_now();
    assert_int_equal(read(tcp[0], b, sizeof b), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(hook_ms_since(t0) < 10000);
    hook_ticker_stop(t);
    close(tcp[0]);
    close(tcp[1]);
    return NULL;
}

static void test_rcvtimeo(void **state)
{
    hook_run(SP_HOOK_ON, rcvtimeo, NULL);
}

/* ---- accept: the listener's SO_RCVTIMEO; accepted sockets inherit it ---- */

static struct sockaddr_in laddr;

static void *client(void *unused)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&laddr, sizeof laddr), 0);
    /* Silent until the server closes, however slow the machine: its read
     * times out first.  (Ten seconds at most: a server read that does not
     * time out then sees the close and fails, instead of hanging.) */
    set_timeo(c, SO_RCVTIMEO, 10000);
    char b[1];
    (void)!read(c, b, sizeof b);
    close(c);
    return NULL;
}

static void *accept_timeo(void *unused)
{
    int l = hook_listener(4, &laddr);
    set_timeo(l, SO_RCVTIMEO, 30);
    int64_t t0 = sp_now();
    assert_int_equal(accept(l, NULL, NULL), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(hook_ms_since(t0) >= 29);
    /* A connection that comes during the wait is accepted (ten seconds: a
     * slow machine cannot make the client late). */
    set_timeo(l, SO_RCVTIMEO, 10000);
    sp_co *c = sp_spawn(client, NULL, NULL);
    int s = accept(l, NULL, NULL);
    assert_true(s >= 0);
    close(s);
    sp_join(c, NULL);
    /* The accepted socket inherits the listener's 30 ms.  The connection is
     * queued before accept is called, so the 30 ms cannot pass first. */
    set_timeo(l, SO_RCVTIMEO, 30);
    c = sp_spawn(client, NULL, NULL);
    struct pollfd p = {l, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 10000), 1);
    s = accept(l, NULL, NULL);
    assert_true(s >= 0);
    char b[4];
    t0 = sp_now();
    assert_int_equal(read(s, b, sizeof b), -1); /* inherited 30 ms */
    assert_int_equal(errno, EAGAIN);
    assert_true(hook_ms_since(t0) >= 29);
    close(s);
    sp_join(c, NULL);
    close(l);
    return NULL;
}

static void test_accept_rcvtimeo_inherited(void **state)
{
    hook_run(SP_HOOK_ON, accept_timeo, NULL);
}

/* ---- SO_SNDTIMEO: a write nobody reads ---- */

#define BIG (16u << 20)

static void *sndtimeo(void *unused)
{
    hook_tcp_pair(tcp);
    set_timeo(tcp[0], SO_SNDTIMEO, 50);
    char *big = calloc(1, BIG);
    int64_t t0 = sp_now();
    ssize_t n = write(tcp[0], big, BIG);
    /* Part went into the buffers, then the time ran out: the count. */
    assert_true(n > 0 && n < (ssize_t)BIG);
    assert_true(hook_ms_since(t0) >= 49);
    t0 = sp_now();
    assert_int_equal(send(tcp[0], big, BIG, 0), -1); /* nothing more fits */
    assert_int_equal(errno, EAGAIN);
    assert_true(hook_ms_since(t0) >= 49);
    free(big);
    close(tcp[0]);
    close(tcp[1]);
    return NULL;
}

static void test_sndtimeo(void **state)
{
    hook_run(SP_HOOK_ON, sndtimeo, NULL);
}

/* ---- connect: SO_SNDTIMEO ends the handshake wait with EINPROGRESS ---- */

static void *connect_timeo(void *unused)
{
    /* A listener that never accepts, with its queue full: the kernel drops
     * further SYNs, so a connect hangs in the handshake. */
    int l = hook_listener(0, &laddr);
    int filler[8], nf = 0;
    for (; nf < 8; nf++) {
        filler[nf] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int r = connect(filler[nf], (struct sockaddr *)&laddr, sizeof laddr);
        assert_true(r == 0 || errno == EINPROGRESS);
    }
    usleep(50000); /* the handshakes that can complete have */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    set_timeo(c, SO_SNDTIMEO, 100);
    int64_t t0 = sp_now();
    int r = connect(c, (struct sockaddr *)&laddr, sizeof laddr);
    int err = errno;
    int64_t ms = hook_ms_since(t0);
    for (int i = 0; i < nf; i++)
        close(filler[i]);
    close(c);
    close(l);
    if (r == 0) {
        print_message("the kernel completed the handshake (syncookies?): nothing to time out\n");
        return NULL;
    }
    assert_int_equal(err, EINPROGRESS);
    /* Ignored, the wait would last the kernel's SYN retries (over 60 s). */
    assert_true(ms >= 99 && ms < 10000);
    return NULL;
}

static void test_connect_sndtimeo(void **state)
{
    hook_run(SP_HOOK_ON, connect_timeo, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcvtimeo),
        cmocka_unit_test(test_accept_rcvtimeo_inherited),
        cmocka_unit_test(test_sndtimeo),
        cmocka_unit_test(test_connect_sndtimeo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
