/* Listener, stop and READY helpers of the server models (see server.h). */
#define _GNU_SOURCE
#include "models/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Out of descriptors, an acceptor sleeps 1 ms, doubling to 100 ms, between
 * tries: the same curve as sp_accept(), so both kinds of model behave
 * alike under EMFILE. */
#define ACCEPT_BACKOFF_MIN_MS 1
#define ACCEPT_BACKOFF_MAX_MS 100

/* Process-wide because signals are.  The flag lives in a MAP_SHARED page
 * so a fork child and its parent see one flag; the pipe is shared the same
 * way, and nobody ever reads it, so once written it stays readable for
 * every poller in every process that holds it. */
static volatile sig_atomic_t *stop_flag;
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    (void)sig;
    sp_server_stop();
}

void sp_server_stop(void)
{
    int err = errno; /* a handler must not disturb the code it interrupted */
    /* Atomic: the handler runs on one thread while the model's other
     * threads (pool, mn) read the flag. */
    if (stop_flag)
        __atomic_store_n(stop_flag, 1, __ATOMIC_RELEASE);
    if (stop_pipe[1] >= 0) {
        ssize_t n = write(stop_pipe[1], "", 1); /* full pipe: already readable */
        (void)n;
    }
    errno = err;
}

int sp_server_signals_init(void)
{
    static const int stops[] = {SIGTERM, SIGINT};
    int p[2];
    void *page;
    struct sigaction sa;

    page = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return -errno;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        int err = errno;
        munmap(page, (size_t)sysconf(_SC_PAGESIZE));
        return -err;
    }
    /* A re-initialising child drops what it inherited; the old page stays
     * mapped (a handler may be reading it) and costs one page. */
    if (stop_pipe[0] >= 0) {
        close(stop_pipe[0]);
        close(stop_pipe[1]);
    }
    stop_pipe[0] = p[0];
    stop_pipe[1] = p[1];
    stop_flag = page;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking accept() or poll() returns EINTR and looks
     * at the flag. */
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++)
        if (sigaction(stops[i], &sa, NULL) < 0)
            return -errno;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

bool sp_server_stopping(void)
{
    return stop_flag && __atomic_load_n(stop_flag, __ATOMIC_ACQUIRE);
}

int sp_server_stop_fd(void)
{
    return stop_pipe[0];
}

int sp_server_listen(const sp_server_opts *o, int flags, int *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    char service[16];
    const char *host = o->host;
    int fd = -1, err = EADDRNOTAVAIL, rc, one = 1;

    if (o->port < 0 || o->port > 65535) {
        errno = EINVAL;
        return -1;
    }
    if (host && (!*host || !strcmp(host, "*")))
        host = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", o->port);
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        errno = rc == EAI_SYSTEM ? errno : rc == EAI_NONAME ? ENOENT : EINVAL;
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int type = ai->ai_socktype | SOCK_CLOEXEC |
                   ((flags & SP_SERVER_NONBLOCK) ? SOCK_NONBLOCK : 0);

        fd = socket(ai->ai_family, type, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if ((flags & SP_SERVER_REUSEPORT) &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
            goto next;
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            goto next;
        if (!(flags & SP_SERVER_BIND_ONLY) &&
            listen(fd, o->backlog > 0 ? o->backlog : SOMAXCONN) < 0)
            goto next;
        break;
    next:
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        return -1;
    }
    if ((*port = sp_server_port(fd)) < 0) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

int sp_server_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    errno = EAFNOSUPPORT;
    return -1;
}

/* Waits until lfd is readable or the stop is asked, at most ms (-1: no
 * limit).  Returns 0 (look again), or -1 with ECANCELED once stopping. */
static int wait_listener(int lfd, int ms)
{
    struct pollfd p[2] = {{.fd = lfd, .events = POLLIN},
                          {.fd = sp_server_stop_fd(), .events = POLLIN}};

    if (poll(p, 2, ms) < 0 && errno != EINTR)
        return -1;
    if (sp_server_stopping() || (p[1].revents & POLLIN)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int sp_server_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len)
{
    int backoff = ACCEPT_BACKOFF_MIN_MS;

    for (;;) {
        socklen_t l = sizeof *peer;
        int fd;

        if (sp_server_stopping()) {
            errno = ECANCELED;
            return -1;
        }
        fd = accept4(lfd, (struct sockaddr *)peer, &l, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            *len = l;
            return fd;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED: /* the peer gave up while queued: not our error */
        case EPROTO:
            continue;
        case EAGAIN:
            backoff = ACCEPT_BACKOFF_MIN_MS;
            if (wait_listener(lfd, -1) < 0)
                return -1;
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            /* The connection stays queued; sleeping (on the stop only)
             * keeps the CPU free until descriptors come back. */
            if (wait_listener(-1, backoff) < 0)
                return -1;
            backoff = backoff * 2 > ACCEPT_BACKOFF_MAX_MS ? ACCEPT_BACKOFF_MAX_MS
                                                          : backoff * 2;
            continue;
        default:
            return -1;
        }
    }
}

void sp_server_ready(int port, const char *model, const char *extra)
{
    printf("READY %d %s%s%s\n", port, model, extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

int sp_server_reap(int *failed)
{
    int n = 0, bad = 0, st;

    while (waitpid(-1, &st, WNOHANG) > 0) {
        n++;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    if (failed)
        *failed = bad;
    return n;
}
