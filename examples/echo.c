/* An echo server in blocking style: one coroutine per connection, on one
 * thread.  Each read parks the coroutine until data arrives; nothing here
 * is a callback.
 *
 *   $ build/examples/echo --port 7000 [--backend epoll|uring] [--idle-ms N]
 *
 * --idle-ms: close a connection idle that long (default 60000; -1: never).
 * Prints "READY <port>" once listening; SIGTERM or SIGINT stops it. */
#include <spindle.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The echo buffer: one 64 KiB stack comfortably holds it. */
#define ECHO_BUF 16384

static int64_t idle_ms = 60000;
static volatile sig_atomic_t stopping;
static int listen_fd = -1;

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as the peers do */
    char buf[ECHO_BUF];
    ssize_t n;
    while ((n = sp_read(fd, buf, sizeof buf, sp_deadline_ms(idle_ms))) > 0)
        if (sp_write_all(fd, buf, (size_t)n, sp_deadline_ms(idle_ms)) < 0)
            break;
    sp_close(fd);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* Signals are noticed between accepts: the acceptor wakes at least every
 * 100 ms to look. */
static void *acceptor(void *arg)
{
    sp_co_attr detached = {.detached = 1, .name = "conn"};
    while (!stopping) {
        int fd = sp_accept(listen_fd, NULL, NULL, sp_deadline_ms(100));
        if (fd < 0) {
            if (errno == ETIMEDOUT || errno == EINTR)
                continue;
            perror("echo: accept");
            continue;
        }
        if (!sp_spawn(serve, (void *)(intptr_t)fd, &detached)) {
            perror("echo: spawn");
            sp_close(fd);
        }
    }
    sp_close(listen_fd);
    exit(0); /* connections still open are dropped: echo keeps no state */
}

int main(int argc, char **argv)
{
    int port = 7000;
    sp_config cfg;
    if (sp_config_init(&cfg) != 0) {
        fprintf(stderr, "echo: bad SPINDLE_* environment variable\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            const char *b = argv[++i];
            if (!strcmp(b, "epoll"))
                cfg.poller = SP_POLL_EPOLL;
            else if (!strcmp(b, "uring"))
                cfg.poller = SP_POLL_URING;
            else {
                fprintf(stderr, "echo: --backend must be epoll or uring, not '%s'\n", b);
                return 2;
            }
        } else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc) {
            idle_ms = atoll(argv[++i]);
        } else {
            fprintf(stderr, "usage: echo [--port P] [--backend epoll|uring] [--idle-ms N]\n");
            return 2;
        }
    }
    if (sp_thread_init(&cfg) != 0) {
        fprintf(stderr, "echo: cannot configure the runtime\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* One descriptor a connection: take all the kernel allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    listen_fd = sp_listen_tcp("127.0.0.1", port, 4096, 0);
    if (listen_fd < 0) {
        fprintf(stderr, "echo: listen on port %d: %s\n", port, strerror(errno));
        return 1;
    }
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    if (getsockname(listen_fd, (struct sockaddr *)&addr, &alen) == 0)
        port = ntohs(addr.sin_port); /* --port 0: the kernel chose */
    if (sp_poller_fallback())
        fprintf(stderr, "echo: io_uring unavailable (%s); using epoll\n",
                strerror(sp_poller_fallback()));
    printf("READY %d %s\n", port, sp_poller_name());
    fflush(stdout);
    sp_run(NULL, acceptor, NULL, NULL);
    return 0;
}
