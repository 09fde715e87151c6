/* prefork: N worker processes (--workers), forked once at start, each
 * blocking in accept() on the one listener they share, then serving that
 * connection with blocking calls.  Apache's prefork MPM.
 *
 * The thundering herd: every worker sleeps in accept() on the same socket,
 * and a new connection must not wake them all.  Linux queues accept()
 * sleepers as exclusive waiters (inet_csk_wait_for_connect uses
 * prepare_to_wait_exclusive), so one connection wakes one worker; that is
 * why the workers block in accept() itself rather than in poll() or epoll
 * on the listener, which (without EPOLLEXCLUSIVE) would wake every worker
 * to race for one connection.  Apache serialised accept with a lock for
 * the same reason on kernels that woke them all.
 *
 * Stop: SIGTERM reaches the parent, whose shutdown(SHUT_RD) of the
 * listener wakes every worker's accept() with EINVAL (no race with a
 * signal arriving just before a worker enters accept).  Workers serving a
 * request finish it; those idle in keep-alive see the shared stop
 * descriptor (server.h).  The parent waits for them all and exits 0.
 * A worker that dies otherwise is replaced. */
#define _GNU_SOURCE
#include "models/conn.h"
#include "models/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* 64 workers: as the pool model, more than the 50 concurrent keep-alive
 * clients of a typical ab/wrk run. */
#define PREFORK_DEFAULT_WORKERS 64
/* The parent looks for dead workers at least this often. */
#define SUPERVISE_MS 500
/* Out of descriptors in accept: a pause, doubling to 100 ms, as elsewhere. */
#define ACCEPT_BACKOFF_MAX_MS 100

/* Shared by the parent and every worker (a MAP_SHARED page made before
 * the forks). */
typedef struct prefork_shared {
    _Atomic int idle; /* workers sleeping in accept() */
    int lfd;
} prefork_shared;

/* Connections wait for a worker when none sleeps in accept() and the
 * listener's accept queue is not empty: for a listening socket TCP_INFO
 * reports the queue's length in tcpi_unacked (its limit in tcpi_sacked). */
static bool accept_queue_busy(sp_conn_server *srv)
{
    prefork_shared *sh = srv->busy_arg;
    struct tcp_info ti;
    socklen_t len = sizeof ti;

    if (atomic_load_explicit(&sh->idle, memory_order_relaxed) > 0)
        return false;
    return getsockopt(sh->lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_unacked > 0;
}

static void worker_main(sp_conn_server *srv, int lfd)
{
    prefork_shared *sh = srv->busy_arg;
    sp_http_date_cache date;
    sp_conn *c = sp_conn_new(srv);
    int backoff = 1;

    sp_http_date_cache_init(&date);
    while (c && !sp_server_stopping()) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd;

        /* The listener is blocking: the worker sleeps here. */
        atomic_fetch_add(&sh->idle, 1);
        fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        atomic_fetch_sub(&sh->idle, 1);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                poll(NULL, 0, backoff);
                backoff = backoff * 2 > ACCEPT_BACKOFF_MAX_MS ? ACCEPT_BACKOFF_MAX_MS
                                                             : backoff * 2;
                continue;
            }
            break; /* EINVAL: the parent shut the listener down */
        }
        backoff = 1;
        sp_conn_start(c, fd, (struct sockaddr *)&peer, len, &date);
        sp_conn_serve(c);
    }
    _exit(0);
}

static pid_t spawn_worker(sp_conn_server *srv, int lfd)
{
    pid_t pid = fork();

    if (pid == 0)
        worker_main(srv, lfd);
    return pid;
}

static int prefork_serve(const sp_server_opts *o)
{
    int n = o->workers > 0 ? o->workers : PREFORK_DEFAULT_WORKERS;
    sp_conn_server srv;
    prefork_shared *sh;
    pid_t *pids;
    int lfd, port, rc, live = 0;

    lfd = sp_server_listen(o, 0, &port); /* blocking: accept() sleeps */
    if (lfd < 0) {
        fprintf(stderr, "spindle serve: listen: %s\n", strerror(errno));
        return 1;
    }
    rc = sp_conn_server_init(&srv, o, &sp_conn_ops_blocking, port);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: %s\n", strerror(-rc));
        close(lfd);
        return 1;
    }
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pids = calloc((size_t)n, sizeof *pids);
    if (sh == MAP_FAILED || !pids) {
        fprintf(stderr, "spindle serve: out of memory\n");
        free(pids);
        close(lfd);
        sp_conn_server_destroy(&srv);
        return 1;
    }
    atomic_init(&sh->idle, 0);
    sh->lfd = lfd;
    srv.busy = accept_queue_busy;
    srv.busy_arg = sh;
    for (int i = 0; i < n; i++) {
        pids[i] = spawn_worker(&srv, lfd);
        if (pids[i] > 0)
            live++;
    }
    if (live == 0) {
        perror("spindle serve: fork");
        free(pids);
        munmap(sh, sizeof *sh);
        close(lfd);
        sp_conn_server_destroy(&srv);
        return 1;
    }
    sp_server_ready(port, "prefork", NULL);

    /* Supervise: replace dead workers until the stop. */
    while (!sp_server_stopping()) {
        struct pollfd p = {.fd = sp_server_stop_fd(), .events = POLLIN};
        int st;
        pid_t pid;

        poll(&p, 1, SUPERVISE_MS);
        while (!sp_server_stopping() && (pid = waitpid(-1, &st, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (pids[i] != pid)
                    continue;
                pids[i] = spawn_worker(&srv, lfd);
                if (pids[i] <= 0)
                    live--;
            }
        }
    }
    shutdown(lfd, SHUT_RD); /* wakes every worker's accept() */
    while (live > 0) {
        pid_t pid = waitpid(-1, NULL, 0);

        if (pid > 0)
            live--;
        else if (errno != EINTR)
            break;
    }
    close(lfd);
    free(pids);
    munmap(sh, sizeof *sh);
    sp_conn_server_destroy(&srv);
    return 0;
}

const sp_model sp_model_prefork = {
    .name = "prefork",
    .summary = "N processes blocking in accept() on one listener",
    .serve = prefork_serve,
};
