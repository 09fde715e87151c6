/* A thread that used the runtime and ends with no coroutine left gives back
 * its poller: a hundred such threads leave no epoll descriptors behind. */
#include "sp_test.h"
#include <dirent.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void *echo_once(void *arg)
{
    int *sv = arg;
    char b[4];
    if (sp_write_all(sv[0], "ping", 4, -1) != 4 || sp_read(sv[1], b, 4, sp_deadline_ms(1000)) != 4)
        return IP(0);
    sp_sleep_ms(1); /* timers too */
    return IP(1);
}

static void *thread_main(void *arg)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    void *ok = NULL;
    if (sp_run(NULL, echo_once, sv, &ok) != 0)
        ok = NULL;
    sp_close(sv[0]);
    sp_close(sv[1]);
    return ok;
}

static void test_threads_release_their_pollers(void **state)
{
    int before = count_fds();
    for (int i = 0; i < 100; i++) {
        pthread_t t;
        void *ok;
        assert_int_equal(pthread_create(&t, NULL, thread_main, NULL), 0);
        pthread_join(t, &ok);
        assert_true(PI(ok));
    }
    int after = count_fds();
    if (after > before + 2)
        fail_msg("%d descriptors before 100 threads, %d after: pollers leak", before, after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_release_their_pollers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
