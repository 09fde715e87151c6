/* Out of descriptors, accept neither spins nor dies: with RLIMIT_NOFILE at
 * 64 and a flood of connections, the server's CPU stays low while it is at
 * the limit, and it accepts again once it frees descriptors. */
#include "sp_test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOOD 200
static int lfd, held[256], nheld;

static void *acceptor(void *arg)
{
    for (;;) {
        /* No deadline: at the limit it waits as long as the test watches. */
        int c = sp_accept(lfd, NULL, NULL, -1);
        if (c < 0)
            return IP(nheld); /* cancelled: the test is over */
        if (nheld < 256)
            held[nheld++] = c;
    }
}

/* 1 when every descriptor is in use: the acceptor has reached the limit. */
static int at_limit(void)
{
    int d = dup(lfd);
    if (d >= 0) {
        close(d);
        return 0;
    }
    return errno == EMFILE;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void flood(int port, int n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(c, (struct sockaddr *)&a, sizeof a); /* left open, never read */
    }
}

static void test_emfile_backs_off_and_recovers(void **state)
{
    lfd = sp_listen_tcp("127.0.0.1", 0, 1024, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &alen);
    int port = ntohs(a.sin_port);

    pid_t client = fork();
    if (client == 0) {
        struct rlimit big = {1024, 1024};
        setrlimit(RLIMIT_NOFILE, &big);
        flood(port, FLOOD);
        pause(); /* holds its sockets until killed */
        _exit(0);
    }
    struct rlimit lim = {64, 64};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
    sp_co *acc = sp_spawn(acceptor, NULL, NULL);

    /* Wait until it is at the limit (the flood may come slowly on a loaded
     * machine), then watch its CPU there.  Spinning, it would use about all
     * of the wall time it gets; backing off, next to nothing.  Half is far
     * from both, and the window is long enough for a slow machine's noise. */
    int64_t until = sp_now() + INT64_C(10000000000);
    while (!at_limit() && sp_now() < until)
        sp_sleep_ms(10);
    if (!at_limit())
        fail_msg("not at the descriptor limit after 10 s (%d held)", nheld);
    int held_at_limit = nheld;
    double c0 = cpu_seconds();
    int64_t w0 = sp_now();
    sp_sleep_ms(2000);
    double used = cpu_seconds() - c0, wall = (double)(sp_now() - w0) / 1e9;
    if (used > wall / 2)
        fail_msg("%.2f s of CPU in %.2f s at the descriptor limit: accept spins", used, wall);
    assert_true(held_at_limit > 30 && held_at_limit < 64);

    /* Free descriptors: it must accept again (the flood is still queued or
     * retried by the client's kernel). */
    for (int i = 0; i < 20; i++)
        sp_close(held[--nheld]);
    int before = nheld;
    until = sp_now() + INT64_C(10000000000);
    while (nheld <= before && sp_now() < until)
        sp_sleep_ms(10);
    if (nheld <= before)
        fail_msg("accepted nothing in 10 s after descriptors were freed (%d held)", nheld);

    kill(client, SIGKILL);
    waitpid(client, NULL, 0);
    sp_cancel(acc);
    sp_join(acc, NULL);
    while (nheld)
        sp_close(held[--nheld]);
    sp_close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emfile_backs_off_and_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
