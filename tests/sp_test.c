#include "sp_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int sp_test_tcp_pair(int *server, int *plain)
{
    int l = sp_listen_tcp("127.0.0.1", 0, 16, 0);
    if (l < 0)
        return -1;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &alen);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    /* completes in the backlog, before the accept */
    if (c < 0 || connect(c, (struct sockaddr *)&a, alen) != 0) {
        sp_close(l);
        return -1;
    }
    int s = sp_accept(l, NULL, NULL, sp_deadline_ms(10000));
    if (s < 0) {
        close(c);
        sp_close(l);
        return -1;
    }
    *server = s;
    *plain = c;
    return l;
}

int sp_test_child(void (*fn)(void *), void *arg, int *status, char *err, size_t errlen)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < errlen && (r = read(p[0], err + n, errlen - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = 0;
    close(p[0]);
    waitpid(pid, status, 0);
    return 0;
}

int sp_test_run_workers(sp_co_fn fn, void *arg, void **result, int workers)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.workers = workers;
    return sp_run(&cfg, fn, arg, result);
}
