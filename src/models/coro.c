/* coro: one thread, one coroutine per connection, on the epoll poller.
 * Each connection runs conn.c's blocking-style loop on spindle's calls
 * (sp_read/sp_writev with deadlines, sp_sleep_until, sp_offload for file
 * opens), so a thousand connections cost a thousand small stacks and no
 * thread.  The stack kind and the context switch come from --stack and
 * --ctx through o->runtime.
 *
 * The same server on another poller, as one shard among several, or on
 * the M:N runtime's workers is the uring, reuseport and mn models:
 * sp__coro_server_run() below.  Under M:N several workers run connections
 * at once, so what they share (the idle list the stop walks, the pool of
 * closed connections) sits under one mutex, held across no call that
 * parks; on one thread it is not taken at all. */
#define _GNU_SOURCE
#include "models/conn.h"
#include "models/server.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Connections kept for reuse once closed: enough for the steady state of a
 * busy server, and a burst of ten thousand gives most of its memory back. */
#define CONN_POOL_KEEP 1024
/* A failing accept that is not about the peer (ENOBUFS, ENOMEM): wait a
 * little rather than spin on it. */
#define ACCEPT_RETRY_MS 10

/* A worker's stack of I/O blocks, alone on its cache line. */
typedef struct io_pool_slot {
    _Alignas(64) sp_conn_io_pool pool;
} io_pool_slot;

typedef struct coro_server {
    sp_conn_server srv;
    sp_conn_ops ops;          /* sp_conn_ops_coro with conn_read below */
    const sp_server_opts *opts;
    const char *model;
    int listen_flags, ready_fd;
    bool srv_up;              /* srv was initialised */
    /* The Date cache of the connections: the thread's on one thread.
     * Under M:N it is NULL and each connection keeps its own, because
     * conn.c fixes c->date at the start and the connection may run on
     * another worker for its next answer. */
    sp_http_date_cache *date;
    sp_http_date_cache thread_date;
    int lfd;                  /* atomic: -1 once the stopper closed it */
    /* Several workers (M:N): the mutex is taken.  On one thread every
     * coroutine that touches what follows runs there, between parks, so
     * it is skipped: two lock pairs per keep-alive request otherwise. */
    bool mt;
    pthread_mutex_t lock;     /* what follows; never held across a park */
    bool stopped;             /* the stopper has walked `idle` */
    /* Connections in an idle read, oldest first: a stop ends them all, the
     * reaper ends those past their idle deadline. */
    sp_conn *idle, *idle_tail;
    int64_t lazy_last;        /* the latest deadline the reaper keeps */
    int64_t slack_ns;         /* how late the reaper may end an idle read */
    sp_co *reaper;
    sp_conn *pool;            /* closed connections, kept for reuse */
    size_t pooled;
    /* The stacks of I/O blocks lent to connections (epoll only): one per
     * worker, each touched only by its worker's thread, so no lock; a
     * block taken on one worker may go back on another (conn.h). */
    io_pool_slot *io_pools;
    size_t n_io_pools;
} coro_server;

static inline void lock(coro_server *s)
{
    if (s->mt)
        pthread_mutex_lock(&s->lock);
}

static inline void unlock(coro_server *s)
{
    if (s->mt)
        pthread_mutex_unlock(&s->lock);
}

/* c->idle_flags: the reaper keeps its deadline (it reads with none), it is
 * on the idle list, the reaper ended it. */
enum { IDLE_LAZY = 1, IDLE_LISTED = 2, IDLE_REAPED = 4 };

static void idle_add(coro_server *s, sp_conn *c)
{
    c->next = NULL;
    c->prev = s->idle_tail;
    if (s->idle_tail)
        s->idle_tail->next = c;
    else
        s->idle = c;
    s->idle_tail = c;
    c->idle_flags |= IDLE_LISTED;
}

static void idle_remove(coro_server *s, sp_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->idle = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->idle_tail = c->prev;
    c->idle_flags &= (uint8_t)~IDLE_LISTED;
}

/* The connections' read.  An idle read (a keep-alive connection waiting
 * for its next request) is on the idle list while it lasts, so that the
 * stopper can end it.  The stopper cannot look at c->idle itself: under
 * M:N it runs beside the connection, which may be between conn.c's look
 * at the stop and its read.  A read that begins after the stopper walked
 * the list takes what is there and waits for nothing, as conn.c's own
 * reads do once they see the stop.
 *
 * Its deadline is kept by the reaper, not by a timer of its own: every
 * keep-alive request would otherwise put a timer in the heap and take it
 * out again (with ten thousand connections, a walk through a heap of ten
 * thousand each way).  The list is in the order reads began, and so in
 * deadline order as long as each deadline is no earlier than the last one
 * kept (always, with one idle timeout; under M:N nearly always): a read
 * whose deadline would break the order keeps its own timer instead. */
/* Puts c on the idle list for a wait with this deadline.  Returns false
 * when the stopper has already walked the list (the wait must then take
 * what is there and wait for nothing); *lazy: the reaper keeps the
 * deadline, so the wait itself has none. */
static bool idle_begin(coro_server *s, sp_conn *c, int64_t deadline, bool *lazy)
{
    bool stopped;

    lock(s);
    stopped = s->stopped;
    c->idle_flags = 0;
    *lazy = false;
    if (!stopped) {
        *lazy = s->reaper && deadline >= 0 && deadline >= s->lazy_last;
        if (*lazy) {
            c->idle_flags = IDLE_LAZY;
            c->idle_until = s->lazy_last = deadline;
        }
        idle_add(s, c);
    }
    unlock(s);
    return !stopped;
}

/* Takes c off the idle list after its wait.  Returns whether the reaper
 * ended the wait (its end is then its deadline's). */
static bool idle_end(coro_server *s, sp_conn *c)
{
    bool reaped;

    lock(s);
    if (c->idle_flags & IDLE_LISTED)
        idle_remove(s, c);
    reaped = c->idle_flags & IDLE_REAPED;
    unlock(s);
    return reaped;
}

static ssize_t conn_read(sp_conn *c, int fd, void *buf, size_t len, int64_t deadline)
{
    coro_server *s = c->owner;
    bool lazy;
    ssize_t n;
    int err;

    if (!c->idle)
        return sp_conn_ops_coro.read(c, fd, buf, len, deadline);
    if (!idle_begin(s, c, deadline, &lazy))
        return sp_conn_ops_coro.read(c, fd, buf, len, sp_now());
    /* `lazy`, not idle_flags: the reaper writes those meanwhile. */
    n = sp_conn_ops_coro.read(c, fd, buf, len, lazy ? -1 : deadline);
    err = errno;
    if (idle_end(s, c) && n == 0) {
        n = -1; /* the end the reaper gave it is its deadline's */
        err = ETIMEDOUT;
    }
    errno = err;
    return n;
}

/* The idle wait of a connection that holds no I/O block (epoll): as the
 * idle read, but it only waits.  SP_MAYBE: the read that ended the last
 * request found the socket drained, so no system call is needed to wait
 * for the next one, only the poller's event.  The stop and the reaper
 * shut the read side, which makes the socket readable: the read that
 * follows sees the end of file. */
static int conn_wait_idle(sp_conn *c, int fd, int64_t deadline)
{
    coro_server *s = c->owner;
    bool lazy;
    int rc, err;

    if (!idle_begin(s, c, deadline, &lazy))
        return 0;
    rc = sp_wait_fd(fd, SP_READ | SP_MAYBE, lazy ? -1 : deadline);
    err = errno;
    idle_end(s, c);
    errno = err;
    return rc < 0 ? -1 : 0;
}

/* The calling worker's stack of I/O blocks.  No park between this and the
 * use of the stack, so the coroutine cannot move meanwhile. */
static sp_conn_io_pool *conn_io_pool(sp_conn *c)
{
    coro_server *s = c->owner;
    int w = s->mt ? sp_worker_index() : 0;

    return &s->io_pools[w < 0 ? 0 : w].pool;
}

static sp_conn *conn_get(coro_server *s)
{
    sp_conn *c;

    lock(s);
    c = s->pool;
    if (c) {
        s->pool = c->next;
        s->pooled--;
    }
    unlock(s);
    return c ? c : sp_conn_new(&s->srv);
}

static void conn_put(coro_server *s, sp_conn *c)
{
    bool keep;

    lock(s);
    keep = s->pooled < CONN_POOL_KEEP;
    if (keep) {
        c->next = s->pool;
        s->pool = c;
        s->pooled++;
    }
    unlock(s);
    if (!keep)
        sp_conn_free(c);
}

static void *conn_main(void *arg)
{
    sp_conn *c = arg;

    sp_conn_serve(c);
    conn_put(c->owner, c);
    return NULL;
}

/* Ends the idle reads past their deadline (shutting their read side, as
 * the stop does), then sleeps until the oldest one left is due, or for the
 * slack if that is sooner, so that a busy server wakes it at most once a
 * slack.  The stopper cancels it. */
static void *reaper(void *arg)
{
    coro_server *s = arg;
    int64_t idle_ns = s->opts->idle_timeout_ms * INT64_C(1000000);

    for (;;) {
        int64_t now = sp_now(), next = now + idle_ns;
        bool stopped;

        lock(s);
        stopped = s->stopped;
        for (sp_conn *c = s->idle, *nx; c && !stopped; c = nx) {
            nx = c->next;
            if (!(c->idle_flags & IDLE_LAZY))
                continue;
            if (c->idle_until > now) {
                next = c->idle_until;
                break;
            }
            idle_remove(s, c);
            c->idle_flags |= IDLE_REAPED;
            sp_conn_stop_idle(c);
        }
        unlock(s);
        if (stopped)
            return NULL;
        if (next < now + s->slack_ns)
            next = now + s->slack_ns;
        sp_sleep_until(next); /* ECANCELED: the stop, seen above */
    }
}

/* Ends the reaper, once the stop is set (which it looks at when the
 * cancel wakes it). */
static void reaper_end(coro_server *s)
{
    if (s->reaper) {
        sp_cancel(s->reaper);
        sp_join(s->reaper, NULL);
    }
}

/* Waits for the stop, then closes the listener (which wakes the acceptor
 * with EBADF) and ends the idle keep-alive waits.  Connections in the middle
 * of a request finish it; conn.c answers them with "Connection: close". */
static void *stopper(void *arg)
{
    coro_server *s = arg;

    while (!sp_server_stopping())
        if (sp_wait_fd(sp_server_stop_fd(), SP_READ, -1) < 0 && errno != EINTR)
            break;
    sp_close(__atomic_exchange_n(&s->lfd, -1, __ATOMIC_ACQ_REL));
    lock(s);
    s->stopped = true;
    for (sp_conn *c = s->idle; c; c = c->next)
        sp_conn_stop_idle(c);
    unlock(s);
    reaper_end(s);
    return NULL;
}

/* Accepts until the stopper closes the listener, a coroutine for each
 * connection. */
static void accept_loop(coro_server *s)
{
    sp_co_attr conn_attr = {.name = "conn", .detached = 1};

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int lfd = __atomic_load_n(&s->lfd, __ATOMIC_ACQUIRE);
        int fd = sp_accept(lfd, (struct sockaddr *)&peer, &len, -1);
        sp_conn *c;

        if (fd < 0) {
            if (__atomic_load_n(&s->lfd, __ATOMIC_ACQUIRE) < 0)
                break; /* closed by the stopper */
            if (errno != EINTR && errno != ECANCELED)
                sp_sleep_ms(ACCEPT_RETRY_MS);
            continue;
        }
        c = conn_get(s);
        if (!c) {
            sp_close(fd);
            continue;
        }
        sp_conn_start(c, fd, (struct sockaddr *)&peer, len, s->date);
        c->owner = s;
        if (!sp_spawn(conn_main, c, &conn_attr)) {
            sp_close(fd);
            conn_put(s, c);
        }
    }
}

/* The main coroutine: listens (inside the runtime, so that under M:N the
 * runtime knows the listener for a stream socket from the start), says
 * READY, and accepts.  Returns the exit status. */
static void *server_main(void *arg)
{
    coro_server *s = arg;
    const sp_server_opts *o = s->opts;
    sp_co_attr stop_attr = {.name = "stopper", .detached = 1};
    sp_co_attr reap_attr = {.name = "reaper"};
    const char *poller;
    char extra[64] = "";
    int rc, port, lfd;

    lfd = sp_listen_tcp(o->host, o->port, o->backlog, s->listen_flags);
    if (lfd < 0 || (port = sp_server_port(lfd)) < 0) {
        fprintf(stderr, "spindle serve: listen on %s:%d: %s\n", o->host ? o->host : "*",
                o->port, strerror(errno));
        if (lfd >= 0)
            sp_close(lfd);
        return (void *)1;
    }
    rc = sp_conn_server_init(&s->srv, o, &s->ops, port);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: %s\n", strerror(-rc));
        sp_close(lfd);
        return (void *)1;
    }
    s->srv_up = true;
    __atomic_store_n(&s->lfd, lfd, __ATOMIC_RELEASE);
    if (!sp_runtime_self()) {
        sp_http_date_cache_init(&s->thread_date);
        s->date = &s->thread_date;
    }
    /* Idle reads end at most a sixteenth of their timeout late (between
     * 1 and 100 ms).  Without a reaper each keeps its own timer. */
    s->slack_ns = s->opts->idle_timeout_ms * INT64_C(1000000) / 16;
    if (s->slack_ns < 1000000)
        s->slack_ns = 1000000;
    if (s->slack_ns > 100000000)
        s->slack_ns = 100000000;
    s->reaper = sp_spawn(reaper, s, &reap_attr);
    if (!sp_spawn(stopper, s, &stop_attr)) {
        perror("spindle serve: spawn");
        sp_close(__atomic_exchange_n(&s->lfd, -1, __ATOMIC_ACQ_REL));
        lock(s);
        s->stopped = true;
        unlock(s);
        reaper_end(s);
        return (void *)1;
    }
    /* The poller exists once the listener does: say so when io_uring was
     * asked for and refused. */
    poller = sp_poller_name();
    if (o->runtime.poller == SP_POLL_URING && poller && strcmp(poller, "uring") != 0) {
        snprintf(extra, sizeof extra, "poller=%s", poller);
        fprintf(stderr, "spindle serve: io_uring refused (%s): serving on %s\n",
                strerror(sp_poller_fallback()), poller);
    }
    if (s->ready_fd >= 0) {
        ssize_t n = write(s->ready_fd, "", 1);

        (void)n; /* a parent that went away reads nothing anyway */
        close(s->ready_fd);
    } else {
        sp_server_ready(port, s->model, extra[0] ? extra : NULL);
    }
    accept_loop(s);
    return (void *)0;
}

int sp__coro_server_run(const sp_server_opts *o, const char *model, int listen_flags,
                        int ready_fd, int workers)
{
    coro_server s;
    sp_config cfg = o->runtime;
    void *status = (void *)1;
    int rc;

    /* The stopper waits on the stop descriptor: make sure there is one. */
    if (sp_server_stop_fd() < 0 && (rc = sp_server_signals_init()) < 0) {
        fprintf(stderr, "spindle serve: signals: %s\n", strerror(-rc));
        return 1;
    }
    memset(&s, 0, sizeof s);
    s.opts = o;
    s.model = model;
    s.listen_flags = listen_flags;
    s.ready_fd = ready_fd;
    s.lfd = -1;
    s.ops = sp_conn_ops_coro;
    s.ops.read = conn_read;
    pthread_mutex_init(&s.lock, NULL);
    s.mt = workers != 1; /* 0: as many as CPUs */
    /* Lent I/O blocks need a wait without a buffer: a readiness wait on
     * epoll.  io_uring's recv wants its buffer up front, and its poll
     * wait costs a system call the read would not, so uring keeps a
     * buffer per connection. */
    if (cfg.poller == SP_POLL_EPOLL) {
        s.n_io_pools = s.mt ? SP_MAX_WORKERS : 1;
        s.io_pools = aligned_alloc(64, s.n_io_pools * sizeof *s.io_pools);
        if (!s.io_pools) {
            fprintf(stderr, "spindle serve: %s\n", strerror(ENOMEM));
            pthread_mutex_destroy(&s.lock);
            return 1;
        }
        memset(s.io_pools, 0, s.n_io_pools * sizeof *s.io_pools);
        s.ops.wait_idle = conn_wait_idle;
        s.ops.io_pool = conn_io_pool;
    }
    cfg.workers = workers;
    rc = sp_run(&cfg, server_main, &s, &status);
    if (rc < 0)
        fprintf(stderr, "spindle serve: runtime: %s\n", strerror(-rc));
    while (s.pool) {
        sp_conn *c = s.pool;

        s.pool = c->next;
        sp_conn_free(c);
    }
    for (size_t i = 0; i < s.n_io_pools; i++)
        sp_conn_io_pool_drain(&s.io_pools[i].pool);
    free(s.io_pools);
    if (s.srv_up)
        sp_conn_server_destroy(&s.srv);
    pthread_mutex_destroy(&s.lock);
    return rc < 0 ? 1 : (int)(intptr_t)status;
}

static int coro_serve(const sp_server_opts *o)
{
    sp_server_opts co = *o;

    co.runtime.poller = SP_POLL_EPOLL;
    return sp__coro_server_run(&co, "coro", 0, -1, 1);
}

const sp_model sp_model_coro = {
    .name = "coro",
    .summary = "one thread, a coroutine per connection, epoll",
    .serve = coro_serve,
};
