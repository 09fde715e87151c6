/* A runtime whose coroutines all wait for something nobody can give ends
 * with "deadlock: ..." on stderr and an abort, on one worker and on many,
 * instead of hanging.  Its own program: the runtime runs in forked
 * children, and a fork from a process that has run threads is refused by
 * TSan (and its history of the parent's threads would follow the child). */
#include "sp_test.h"

#include <signal.h>
#include <spindle/sync.h>
#include <sys/wait.h>
#include <unistd.h>

static sp_chan *never;

static void *waits_forever(void *arg)
{
    (void)arg;
    long v;
    sp_chan_recv(never, &v, -1);
    return NULL;
}

static void *main_deadlocks(void *arg)
{
    (void)arg;
    never = sp_chan_make(sizeof(long), 0);
    sp_co *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = sp_spawn(waits_forever, NULL, NULL);
    for (int i = 0; i < 3; i++)
        sp_join(c[i], NULL);
    return NULL;
}

static void deadlock_child(void *arg)
{
    /* Without the report the child hangs; the alarm ends it instead, and
     * the test then sees SIGALRM, not the message. */
    alarm(20);
    sp_test_run_workers(main_deadlocks, NULL, NULL, (int)PI(arg));
}

static void test_deadlock_is_reported(void **state)
{
    (void)state;
    static const int workers[] = {1, 2, 4};
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
        int status;
        char err[4096];
        assert_int_equal(sp_test_child(deadlock_child, IP(workers[i]), &status, err, sizeof err), 0);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
            fail_msg("%d workers: expected an abort, got status %#x:\n%s", workers[i], status, err);
        if (!strstr(err, "deadlock: every coroutine"))
            fail_msg("%d workers: no deadlock report on stderr:\n%s", workers[i], err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlock_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
