/* What the linked hook tests share.  They are linked with
 * libspindle_hook.a (whole) instead of libspindle.a, so the plain libc
 * names they call (read, accept, poll, usleep...) are the hooks, and they
 * turn the hooks on themselves with sp_hook_enable.
 *
 * Shared-stack runs (SPINDLE_STACK=shared): a parked coroutine's stack is
 * not addressable by others, so whatever two coroutines share lives in
 * static storage here, never in a local of one of them. */
#ifndef SP_HOOK_TEST_H
#define SP_HOOK_TEST_H

#include "sp_test.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Runs fn(arg) as the first coroutine of this thread with the hooks on
 * (flags: SP_HOOK_ON, | SP_HOOK_THREADS), and returns what it returned. */
static inline void *hook_run(int flags, void *(*fn)(void *), void *arg)
{
    void *r = NULL;
    sp_hook_enable(flags);
    assert_int_equal(sp_run(NULL, fn, arg, &r), 0);
    sp_hook_enable(0);
    return r;
}

/* A coroutine that counts milliseconds with usleep until told to stop:
 * when it advanced at all across a call, that call parked instead of
 * blocking the thread (a blocked thread leaves it exactly where it was).
 * How far it advanced depends on the machine's load, so tests ask for one
 * tick, not for a rate. */
static volatile long hook_ticks;
static volatile int hook_tick_stop;

static void *hook_ticker(void *unused)
{
    (void)unused;
    while (!hook_tick_stop) {
        usleep(1000);
        hook_ticks++;
    }
    return NULL;
}

static inline sp_co *hook_ticker_start(void)
{
    hook_ticks = 0;
    hook_tick_stop = 0;
    sp_co *t = sp_spawn(hook_ticker, NULL, NULL);
    assert_non_null(t);
    return t;
}

static inline void hook_ticker_stop(sp_co *t)
{
    hook_tick_stop = 1;
    assert_int_equal(sp_join(t, NULL), 0);
}

static inline int64_t hook_ms_since(int64_t t0)
{
    return (sp_now() - t0) / 1000000;
}

/* The real O_NONBLOCK of fd, asked of the kernel past every hook. */
static inline int hook_real_nonblock(int fd)
{
    return ((int)syscall(SYS_fcntl, fd, F_GETFL) & O_NONBLOCK) != 0;
}

/* A connected TCP pair on 127.0.0.1 (made with the hooked calls: from a
 * coroutine they are parkable descriptors). */
static inline void hook_tcp_pair(int fds[2])
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 8), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&a, sizeof a), 0);
    fds[1] = accept(l, NULL, NULL);
    assert_true(fds[1] >= 0);
    close(l);
}

/* A listener on 127.0.0.1 at a port the kernel picks; *port gets it. */
static inline int hook_listener(int backlog, struct sockaddr_in *addr)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, backlog), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    *addr = a;
    return l;
}

#endif
