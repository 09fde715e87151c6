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
        int c = sp_accept(lfd, NULL, NULL, sp_deadline_ms(3000));
        if (c < 0)
            return IP(nheld); /* quiet for 3 s: the test is over */
        if (nheld < 256)
            held[nheld++] = c;
    }
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

    /* Let it reach the limit, then watch its CPU at the limit. */
    sp_sleep_ms(300);
    int at_limit = nheld;
    double c0 = cpu_seconds();
    sp_sleep_ms(1000);
    double used = cpu_seconds() - c0;
    if (used > 0.3)
        fail_msg("%.2f s of CPU in 1 s at the descriptor limit: accept spins", used);
    assert_true(at_limit > 30 && at_limit < 64);

    /* Free descriptors: it must accept again (the flood is still queued or
     * retried by the client's kernel). */
    for (int i = 0; i < 20; i++)
        sp_close(held[--nheld]);
    int before = nheld;
    sp_sleep_ms(500);
    if (nheld <= before)
        fail_msg("accepted nothing after descriptors were freed (%d held)", nheld);

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
