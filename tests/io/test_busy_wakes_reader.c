/* A coroutine parked on a descriptor is woken while the thread never runs
 * out of work: another coroutine yields in a loop, so the scheduler never
 * sleeps in the poller and only its between-switches poll (timeout 0) can
 * see the data.  On io_uring with COOP_TASKRUN the kernel posts nothing
 * until the thread enters the ring, and that poll must enter it. */
#include "sp_test.h"
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile int done;

static void *late_writer(void *arg)
{
    int fd = (int)PI(arg);
    usleep(50000); /* the reader is parked and the spinner spinning by now */
    ssize_t w = write(fd, "x", 1);
    (void)w;
    return NULL;
}

static void *spinner(void *arg)
{
    int64_t give_up = sp_now() + 5000000000LL;
    while (!done && sp_now() < give_up)
        sp_yield();
    return arg;
}

static void *reader(void *arg)
{
    char c;
    ssize_t n = sp_read((int)PI(arg), &c, 1, sp_deadline_ms(5000));
    done = 1;
    return IP(n);
}

static void test_busy_thread_sees_data(void **state)
{
    int sv[2];
    pthread_t t;
    void *got;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    done = 0;
    sp_co *r = sp_spawn(reader, IP(sv[0]), NULL);
    sp_co *s = sp_spawn(spinner, NULL, NULL);
    pthread_create(&t, NULL, late_writer, IP(sv[1]));
    int64_t t0 = sp_now();
    assert_int_equal(sp_join(r, &got), 0);
    int64_t ms = (sp_now() - t0) / 1000000;
    sp_join(s, NULL);
    pthread_join(t, NULL);
    if (PI(got) != 1)
        fail_msg("the reader got %ld, expected the byte (a timeout: the busy "
                 "thread never collected the readiness)", (long)PI(got));
    if (ms > 1000)
        fail_msg("the reader woke after %lld ms while the thread was busy",
                 (long long)ms);
    sp_close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_thread_sees_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
