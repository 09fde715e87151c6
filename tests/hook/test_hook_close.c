/* close: a coroutine parked on a descriptor that another closes wakes with
 * EBADF; and a descriptor number closed and made again elsewhere (another
 * thread, or past the hooks) is parked on correctly afterwards, not with
 * what the poller remembered of the old one. */
#include "hook_test.h"

static int sv[2];
static ssize_t got;
static int got_err;

static void *reader(void *unused)
{
    char b[4];
    got = read(sv[0], b, sizeof b);
    got_err = errno;
    return NULL;
}

static void *close_wakes(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    sp_co *r = sp_spawn(reader, NULL, NULL);
    usleep(5000); /* the reader parks */
    assert_int_equal(close(sv[0]), 0);
    sp_join(r, NULL);
    assert_int_equal(got, -1);
    assert_int_equal(got_err, EBADF);
    close(sv[1]);
    assert_int_equal(close(sv[1]), -1); /* twice: libc's answer */
    assert_int_equal(errno, EBADF);
    return NULL;
}

static void test_close_wakes_parked(void **state)
{
    hook_run(SP_HOOK_ON, close_wakes, NULL);
}

/* ---- a number reused behind this thread's back ---- */

static int reused[2];

static void *poke(void *unused)
{
    usleep(10000);
    assert_int_equal(write(reused[1], "new", 3), 3);
    return NULL;
}

static void *close_on_thread(void *arg)
{
    close((int)PI(arg)); /* no scheduler here: the plain close */
    return NULL;
}

/* How the old descriptor at `fd` goes away: 0 by close() on another
 * thread, 1 by a close(2) system call past every hook. */
static void *reuse(void *arg)
{
    int how = (int)PI(arg);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int fd = sv[0];
    /* Registered with this thread's poller, and ready bits remembered. */
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5), 0);
    if (how == 0) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, close_on_thread, IP(fd)), 0);
        pthread_join(t, NULL);
    } else {
        assert_int_equal((int)syscall(SYS_close, fd), 0);
    }
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, reused), 0);
    int mine = reused[0] == fd ? 0 : reused[1] == fd ? 1 : -1;
    if (mine < 0) {
        print_message("the kernel gave other numbers: nothing to test\n");
    } else {
        if (mine == 1) { /* read on the reused number, write on the other */
            int x = reused[0];
            reused[0] = reused[1];
            reused[1] = x;
        }
        sp_co *w = sp_spawn(poke, NULL, NULL);
        char b[4];
        int64_t t0 = sp_now();
        assert_int_equal(read(reused[0], b, sizeof b), 3); /* parks, is woken */
        assert_true(hook_ms_since(t0) >= 5);
        sp_join(w, NULL);
    }
    close(reused[0]);
    close(reused[1]);
    close(sv[1]);
    return NULL;
}

static void test_reuse_after_close_elsewhere(void **state)
{
    hook_run(SP_HOOK_ON, reuse, IP(0));
}

static void test_reuse_after_unhooked_close(void **state)
{
    hook_run(SP_HOOK_ON, reuse, IP(1));
}

/* ---- close() with the hooks off still resets the runtime's state ---- */

static int read_over;

/* Writes once sp_read is over, or after ten seconds: a read that blocked
 * the thread then gets the byte and fails the test instead of hanging. */
static void *write_much_later(void *unused)
{
    struct timespec ts = {0, 1000000};
    for (int i = 0; i < 10000 && !__atomic_load_n(&read_over, __ATOMIC_ACQUIRE); i++)
        nanosleep(&ts, NULL);
    (void)!write(sv[1], "x", 1);
    return NULL;
}

static void *park_once(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct pollfd p = {sv[0], POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5), 0);
    char b;
    assert_int_equal(recv(sv[0], &b, 1, MSG_DONTWAIT), -1);
    /* Make the runtime remember sv[0] as non-blocking, as a park does... */
    struct timeval tv = {0, 1000};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(read(sv[0], &b, 1), -1);
    /* And as readable: a read that got all it asked leaves that bit set. */
    assert_int_equal(write(sv[1], "y", 1), 1);
    assert_int_equal(read(sv[0], &b, 1), 1);
    return NULL;
}

static void *sp_read_after(void *unused)
{
    /* The same numbers, blocking now (the hooks are off): sp_read must make
     * them non-blocking itself, not trust what it knew of the old ones. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    __atomic_store_n(&read_over, 0, __ATOMIC_RELEASE);
    pthread_t w;
    assert_int_equal(pthread_create(&w, NULL, write_much_later, NULL), 0);
    char b;
    ssize_t n = sp_read(sv[0], &b, 1, sp_deadline_ms(50));
    int err = errno;
    __atomic_store_n(&read_over, 1, __ATOMIC_RELEASE);
    assert_int_equal(n, -1);
    assert_int_equal(err, ETIMEDOUT);
    pthread_join(w, NULL);
    sp_close(sv[0]);
    sp_close(sv[1]);
    return NULL;
}

static void test_close_with_hooks_off(void **state)
{
    hook_run(SP_HOOK_ON, park_once, NULL); /* hooks are off once it returns */
    close(sv[0]);
    close(sv[1]);
    void *r;
    assert_int_equal(sp_run(NULL, sp_read_after, NULL, &r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_wakes_parked),
        cmocka_unit_test(test_reuse_after_close_elsewhere),
        cmocka_unit_test(test_reuse_after_unhooked_close),
        cmocka_unit_test(test_close_with_hooks_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
