/* coro: one thread, one coroutine per connection, on the epoll poller.
 * Each connection runs conn.c's blocking-style loop on spindle's calls
 * (sp_read/sp_writev with deadlines, sp_sleep_until, sp_offload for file
 * opens), so a thousand connections cost a thousand small stacks and no
 * thread.  The stack kind and the context switch come from --stack and
 * --ctx through o->runtime.
 *
 * The same server, on another poller or as one shard among several, is the
 * uring and reuseport models: sp__coro_server_run() below. */
#define _GNU_SOURCE
#include "models/conn.h"
#include "models/server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Connections kept for reuse once closed: enough for the steady state of a
 * busy server, and a burst of ten thousand gives most of its memory back. */
#define CONN_POOL_KEEP 1024
/* A failing accept that is not about the peer (ENOBUFS, ENOMEM): wait a
 * little rather than spin on it. */
#define ACCEPT_RETRY_MS 10

typedef struct coro_server {
    sp_conn_server srv;
    sp_http_date_cache date; /* the thread's: every connection shares it */
    int lfd;                 /* -1 once the stop closed it */
    sp_conn *live;           /* every open connection: the stop visits them */
    sp_conn *pool;           /* closed connections, kept for reuse */
    size_t pooled;
} coro_server;

static sp_conn *conn_get(coro_server *s)
{
    sp_conn *c = s->pool;

    if (!c)
        return sp_conn_new(&s->srv);
    s->pool = c->next;
    s->pooled--;
    return c;
}

static void conn_put(coro_server *s, sp_conn *c)
{
    if (s->pooled >= CONN_POOL_KEEP) {
        sp_conn_free(c);
        return;
    }
    c->next = s->pool;
    s->pool = c;
    s->pooled++;
}

static void live_add(coro_server *s, sp_conn *c)
{
    c->prev = NULL;
    c->next = s->live;
    if (s->live)
        s->live->prev = c;
    s->live = c;
}

static void live_remove(coro_server *s, sp_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void *conn_main(void *arg)
{
    sp_conn *c = arg;
    coro_server *s = c->owner;

    sp_conn_serve(c);
    live_remove(s, c);
    conn_put(s, c);
    return NULL;
}

/* Waits for the stop, then closes the listener (which wakes the acceptor
 * with EBADF) and ends the idle keep-alive waits.  Connections in the middle
 * of a request finish it; conn.c answers them with "Connection: close". */
static void *stopper(void *arg)
{
    coro_server *s = arg;
    int lfd;

    while (!sp_server_stopping())
        if (sp_wait_fd(sp_server_stop_fd(), SP_READ, -1) < 0 && errno != EINTR)
            break;
    lfd = s->lfd;
    s->lfd = -1;
    sp_close(lfd);
    for (sp_conn *c = s->live; c; c = c->next)
        sp_conn_stop_idle(c);
    return NULL;
}

static void *acceptor(void *arg)
{
    coro_server *s = arg;
    sp_co_attr conn_attr = {.name = "conn", .detached = 1};
    sp_co_attr stop_attr = {.name = "stopper", .detached = 1};

    if (!sp_spawn(stopper, s, &stop_attr)) {
        perror("spindle serve: spawn");
        return NULL;
    }
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        sp_conn *c;
        int fd = sp_accept(s->lfd, (struct sockaddr *)&peer, &len, -1);

        if (fd < 0) {
            if (s->lfd < 0)
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
        sp_conn_start(c, fd, (struct sockaddr *)&peer, len, &s->date);
        c->owner = s;
        live_add(s, c);
        if (!sp_spawn(conn_main, c, &conn_attr)) {
            live_remove(s, c);
            sp_close(fd);
            conn_put(s, c);
        }
    }
    return NULL;
}

int sp__coro_server_run(const sp_server_opts *o, const char *model,
                        int listen_flags, int ready_fd)
{
    coro_server s;
    const char *poller;
    char extra[64] = "";
    int rc, port;

    memset(&s, 0, sizeof s);
    /* The stopper waits on the stop descriptor: make sure there is one. */
    if (sp_server_stop_fd() < 0 && (rc = sp_server_signals_init()) < 0) {
        fprintf(stderr, "spindle serve: signals: %s\n", strerror(-rc));
        return 1;
    }
    rc = sp_thread_init(&o->runtime);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: runtime: %s\n", strerror(-rc));
        return 1;
    }
    s.lfd = sp_listen_tcp(o->host, o->port, o->backlog, listen_flags);
    if (s.lfd < 0 || (port = sp_server_port(s.lfd)) < 0) {
        fprintf(stderr, "spindle serve: listen on %s:%d: %s\n", o->host ? o->host : "*",
                o->port, strerror(errno));
        return 1;
    }
    rc = sp_conn_server_init(&s.srv, o, &sp_conn_ops_coro, port);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: %s\n", strerror(-rc));
        sp_close(s.lfd);
        return 1;
    }
    sp_http_date_cache_init(&s.date);
    /* The poller exists once the listener does: say so when io_uring was
     * asked for and refused. */
    poller = sp_poller_name();
    if (o->runtime.poller == SP_POLL_URING && poller && strcmp(poller, "uring") != 0) {
        snprintf(extra, sizeof extra, "poller=%s", poller);
        fprintf(stderr, "spindle serve: io_uring refused (%s): serving on %s\n",
                strerror(sp_poller_fallback()), poller);
    }
    if (ready_fd >= 0) {
        ssize_t n = write(ready_fd, "", 1);

        (void)n; /* a parent that went away reads nothing anyway */
        close(ready_fd);
    } else {
        sp_server_ready(port, model, extra[0] ? extra : NULL);
    }
    rc = sp_run(NULL, acceptor, &s, NULL);
    if (s.lfd >= 0)
        sp_close(s.lfd);
    while (s.pool) {
        sp_conn *c = s.pool;

        s.pool = c->next;
        sp_conn_free(c);
    }
    sp_conn_server_destroy(&s.srv);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}

static int coro_serve(const sp_server_opts *o)
{
    sp_server_opts co = *o;

    co.runtime.poller = SP_POLL_EPOLL;
    return sp__coro_server_run(&co, "coro", 0, -1);
}

const sp_model sp_model_coro = {
    .name = "coro",
    .summary = "one thread, a coroutine per connection, epoll",
    .serve = coro_serve,
};
