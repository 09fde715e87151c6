#include "sp_test.h"

#include <sys/wait.h>
#include <unistd.h>

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
