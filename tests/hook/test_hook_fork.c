/* fork (and vfork, which the hooks turn into fork) from a coroutine: the
 * child's calls are libc's, a descriptor the runtime made non-blocking
 * still blocks in the child, and what the child closes is not taken out of
 * the parent's poller (the two share one epoll instance). */
#include "hook_test.h"

#include <sys/wait.h>

static int sv[2];

static void *late_write(void *arg)
{
    usleep(10000);
    assert_int_equal(write(sv[1], arg, 1), 1);
    return NULL;
}

/* In the child: a blocking read (the parent writes 20 ms later), then a
 * close that must not touch the parent's registration. */
static void child(void)
{
    char b[2];
    ssize_t n = read(sv[0], b, 1);
    close(sv[0]);
    _exit(n == 1 && b[0] == 'c' ? 0 : 1);
}

static void *forks(void *arg)
{
    int use_vfork = (int)PI(arg);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct pollfd p = {sv[0], POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5), 0); /* registered with our poller */
    fflush(NULL);
    pid_t pid = use_vfork ? vfork() : fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child();
    usleep(20000);
    assert_int_equal(write(sv[1], "c", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* it blocked, then read "c" */
    /* The parent still parks on, and is woken for, its descriptor.  The
     * timeout is a backstop, far past any delay of a slow machine. */
    struct timeval tv = {20, 0};
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    sp_co *w = sp_spawn(late_write, "p", NULL);
    char b[2];
    int64_t t0 = sp_now();
    assert_int_equal(read(sv[0], b, 1), 1);
    assert_int_equal(b[0], 'p');
    /* Woken by the poller, not found by the last look at the timeout:
     * the registration survived the child. */
    assert_true(hook_ms_since(t0) < 10000);
    sp_join(w, NULL);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_fork_child(void **state)
{
    hook_run(SP_HOOK_ON, forks, IP(0));
}

static void test_vfork_child(void **state)
{
    hook_run(SP_HOOK_ON, forks, IP(1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_child),
        cmocka_unit_test(test_vfork_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
