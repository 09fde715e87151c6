/* Where io_uring is refused (here by a seccomp filter, as container
 * runtimes do), the uring backend falls back to epoll and everything works;
 * where it is allowed, the backend is really io_uring. */
#include "sp_test.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int deny_io_uring(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* Echo one message over a socketpair through the runtime. */
static int round_trip(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 0;
    char buf[8] = {0};
    if (sp_write_all(sv[1], "ping", 4, -1) != 4)
        return 0;
    if (sp_read(sv[0], buf, sizeof buf, sp_deadline_ms(1000)) != 4)
        return 0;
    sp_close(sv[0]);
    sp_close(sv[1]);
    return strcmp(buf, "ping") == 0;
}

static void child(void *arg)
{
    if (arg && deny_io_uring() != 0) {
        fputs("seccomp unavailable\n", stderr);
        _exit(3);
    }
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.poller = SP_POLL_URING;
    cfg.epoll_level = 0;
    sp_thread_init(&cfg);
    int ok = round_trip();
    fprintf(stderr, "poller=%s ok=%d reason=%d\n", sp_poller_name(), ok, sp_poller_fallback());
    _exit(ok ? 0 : 1);
}

static void test_refused_falls_back(void **state)
{
    int status;
    char err[256];
    sp_test_child(child, IP(1), &status, err, sizeof err);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
        skip();
    if (!strstr(err, "poller=epoll ok=1 reason=1\n")) /* EPERM, from the filter */
        fail_msg("expected the epoll fallback to serve, refused with EPERM, got: %s", err);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_allowed_is_uring(void **state)
{
    int status;
    char err[256];
    sp_test_child(child, NULL, &status, err, sizeof err);
    /* Kernels or sandboxes without io_uring fall back here too: say so. */
    if (strstr(err, "poller=epoll ok=1"))
        skip();
    if (!strstr(err, "poller=uring ok=1 reason=0"))
        fail_msg("expected io_uring to serve, got: %s", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_falls_back),
        cmocka_unit_test(test_allowed_is_uring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
