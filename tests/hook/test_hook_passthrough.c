/* Outside a coroutine the hooked calls are libc's: on a plain thread, in a
 * root context with nothing else to run, and with the hooks off.  A
 * descriptor the runtime made non-blocking behind the program's back
 * still behaves as the blocking one the program asked for (it blocks, and
 * SO_RCVTIMEO still applies), which takes the real poll underneath. */
#include "hook_test.h"

#include <sys/select.h>

#include "core/internal.h"

static int sv[2];

static void *late_write_thread(void *arg)
{
    struct timespec ts = {0, 30000000};
    nanosleep(&ts, NULL);
    assert_int_equal(write(sv[1], "late", 4), 4);
    return arg;
}

/* Runs on a plain pthread: no scheduler, so everything is libc's. */
static void *plain_thread(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_false(hook_real_nonblock(sv[0])); /* nobody touched the flag */
    pthread_t w;
    assert_int_equal(pthread_create(&w, NULL, late_write_thread, NULL), 0);
    char b[8];
    int64_t t0 = sp_now();
    assert_int_equal(read(sv[0], b, sizeof b), 4); /* blocks this thread */
    assert_true(hook_ms_since(t0) >= 25);
    pthread_join(w, NULL);
    assert_false(hook_real_nonblock(sv[0]));
    struct pollfd p = {sv[0], POLLIN, 0};
    t0 = sp_now();
    assert_int_equal(poll(&p, 1, 20), 0);
    assert_true(hook_ms_since(t0) >= 19);
    t0 = sp_now();
    assert_int_equal(usleep(10000), 0);
    assert_true(hook_ms_since(t0) >= 9);
    close(sv[0]);
    close(sv[1]);
    assert_null(sp__tls_sched); /* the hooks never made a scheduler here */
    return NULL;
}

static void test_plain_thread(void **state)
{
    sp_hook_enable(SP_HOOK_ON);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, plain_thread, NULL), 0);
    pthread_join(t, NULL);
    sp_hook_enable(0);
}

/* ---- a socket made non-blocking by a coroutine, used by a plain thread ---- */

static int shared[2];

static void *make_in_coroutine(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, shared), 0);
    /* A coroutine parks on it once: the runtime makes it non-blocking. */
    struct timeval tv = {0, 1000};
    assert_int_equal(setsockopt(shared[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    char b;
    assert_int_equal(read(shared[0], &b, 1), -1);
    assert_int_equal(errno, EAGAIN);
    tv.tv_usec = 0;
    assert_int_equal(setsockopt(shared[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_true(hook_real_nonblock(shared[0])); /* the runtime's, for parking */
    return NULL;
}

static void *writer_of_shared(void *unused)
{
    struct timespec ts = {0, 30000000};
    nanosleep(&ts, NULL);
    assert_int_equal(write(shared[1], "abc", 3), 3);
    return NULL;
}

static void *reader_of_shared(void *unused)
{
    char b[8];
    int64_t t0 = sp_now();
    assert_int_equal(read(shared[0], b, sizeof b), 3); /* blocks, no EAGAIN */
    assert_true(hook_ms_since(t0) >= 25);
    assert_int_equal(fcntl(shared[0], F_GETFL) & O_NONBLOCK, 0);
    struct timeval tv = {0, 30000};
    assert_int_equal(setsockopt(shared[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    t0 = sp_now();
    assert_int_equal(read(shared[0], b, sizeof b), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(hook_ms_since(t0) >= 29);
    return NULL;
}

static void test_runtime_nonblock_seen_as_blocking(void **state)
{
    hook_run(SP_HOOK_ON, make_in_coroutine, NULL);
    sp_hook_enable(SP_HOOK_ON);
    pthread_t r, w;
    assert_int_equal(pthread_create(&r, NULL, reader_of_shared, NULL), 0);
    assert_int_equal(pthread_create(&w, NULL, writer_of_shared, NULL), 0);
    pthread_join(r, NULL);
    pthread_join(w, NULL);
    /* The root context of this thread, nothing else to run: also libc's
     * blocking behaviour. */
    assert_int_equal(pthread_create(&w, NULL, writer_of_shared, NULL), 0);
    char b[8];
    struct timeval none = {0, 0};
    setsockopt(shared[0], SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    assert_int_equal(read(shared[0], b, sizeof b), 3);
    pthread_join(w, NULL);
    sp_hook_enable(0);
    close(shared[0]);
    close(shared[1]);
}

/* ---- hooks off: a coroutine's blocking call blocks the thread ---- */

static void *write_later(void *unused)
{
    struct timespec ts = {0, 30000000};
    nanosleep(&ts, NULL);
    assert_int_equal(write(sv[1], "x", 1), 1);
    return NULL;
}

static void *hooks_off(void *unused)
{
    sp_co *t = hook_ticker_start();
    usleep(3000);
    sp_hook_enable(0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pthread_t w;
    assert_int_equal(pthread_create(&w, NULL, write_later, NULL), 0);
    long before = hook_ticks;
    char b[2];
    assert_int_equal(read(sv[0], b, 1), 1);
    assert_int_equal(hook_ticks, before); /* the whole thread waited */
    assert_false(hook_real_nonblock(sv[0]));
    pthread_join(w, NULL);
    sp_hook_enable(SP_HOOK_ON);
    hook_ticker_stop(t);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_hooks_off(void **state)
{
    hook_run(SP_HOOK_ON, hooks_off, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_thread),
        cmocka_unit_test(test_runtime_nonblock_seen_as_blocking),
        cmocka_unit_test(test_hooks_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
