/* A descriptor the program made non-blocking itself stays non-blocking
 * under the hooks: EAGAIN at once, no park (fcntl O_NONBLOCK, SOCK_NONBLOCK,
 * accept4, pipe2, eventfd, ioctl FIONBIO, MSG_DONTWAIT); fcntl(F_GETFL)
 * shows the program's flag, not the runtime's; and clearing it brings the
 * parking back. */
#include "hook_test.h"

#include <sys/eventfd.h>
#include <sys/ioctl.h>

/* The call returned EAGAIN without parking: no other coroutine ran.  (The
 * ticker, not the clock: a preempted thread loses milliseconds without
 * parking, and a park lets the ticker count.) */
#define ASSERT_EAGAIN_NOW(call)                         \
    do {                                                \
        long t0_ = hook_ticks;                          \
        assert_int_equal((call), -1);                   \
        assert_true(errno == EAGAIN);                   \
        assert_int_equal(hook_ticks, t0_);              \
    } while (0)

static int sv[2];

static void *poke(void *unused)
{
    usleep(15000);
    assert_int_equal(write(sv[1], "z", 1), 1);
    return NULL;
}

static void *flags(void *unused)
{
    sp_co *t = hook_ticker_start();
    usleep(2000); /* the ticker is up and parked */
    char b[4];

    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fcntl(s, F_GETFL) & O_NONBLOCK);
    struct sockaddr_in a;
    int l = hook_listener(4, &a);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    assert_true(r == 0 || errno == EINPROGRESS); /* not waited for */
    close(s);
    close(l);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ASSERT_EAGAIN_NOW(recv(sv[0], b, 1, MSG_DONTWAIT));
    int fl = fcntl(sv[0], F_GETFL);
    assert_int_equal(fl & O_NONBLOCK, 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, fl | O_NONBLOCK), 0);
    assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    ASSERT_EAGAIN_NOW(read(sv[0], b, 1));
    /* Back to blocking: parks again, and the runtime keeps the real flag. */
    assert_int_equal(fcntl(sv[0], F_SETFL, fl & ~O_NONBLOCK), 0);
    assert_int_equal(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    sp_co *p = sp_spawn(poke, NULL, NULL);
    long before = hook_ticks;
    assert_int_equal(read(sv[0], b, 1), 1);
    assert_true(hook_ticks - before >= 1);
    assert_true(hook_real_nonblock(sv[0]));
    sp_join(p, NULL);

    /* ioctl(FIONBIO), both ways. */
    int on = 1;
    assert_int_equal(ioctl(sv[0], FIONBIO, &on), 0);
    ASSERT_EAGAIN_NOW(read(sv[0], b, 1));
    assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    on = 0;
    assert_int_equal(ioctl(sv[0], FIONBIO, &on), 0);
    assert_int_equal(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    assert_true(hook_real_nonblock(sv[0]));
    close(sv[0]);
    close(sv[1]);

    int pp[2];
    assert_int_equal(pipe2(pp, O_NONBLOCK), 0);
    ASSERT_EAGAIN_NOW(read(pp[0], b, 1));
    close(pp[0]);
    close(pp[1]);

    int ev = eventfd(0, EFD_NONBLOCK);
    uint64_t v;
    ASSERT_EAGAIN_NOW(read(ev, &v, sizeof v));
    close(ev);

    /* A non-blocking listener: accept says EAGAIN, at once. */
    l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 4), 0);
    ASSERT_EAGAIN_NOW(accept(l, NULL, NULL));
    ASSERT_EAGAIN_NOW(accept4(l, NULL, NULL, SOCK_NONBLOCK));
    close(l);

    hook_ticker_stop(t);
    return NULL;
}

static void test_user_nonblocking_stays(void **state)
{
    hook_run(SP_HOOK_ON, flags, NULL);
}

/* A blocking socket made with F_DUPFD / dup keeps the program's view. */
static void *dups(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int d = dup(sv[0]);
    int e = fcntl(sv[0], F_DUPFD_CLOEXEC, 100);
    assert_true(d >= 0 && e >= 100);
    sp_co *p = sp_spawn(poke, NULL, NULL);
    char b[2];
    assert_int_equal(read(e, b, 1), 1); /* parks on the duplicate */
    sp_join(p, NULL);
    assert_int_equal(fcntl(d, F_GETFL) & O_NONBLOCK, 0);
    int n = dup2(sv[0], 90);
    assert_int_equal(n, 90);
    p = sp_spawn(poke, NULL, NULL);
    assert_int_equal(read(90, b, 1), 1);
    sp_join(p, NULL);
    close(90);
    close(d);
    close(e);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_duplicates(void **state)
{
    hook_run(SP_HOOK_ON, dups, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_nonblocking_stays),
        cmocka_unit_test(test_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
