/* pool: a fixed pool of N threads (--workers) taking accepted connections
 * from a bounded queue.  No thread is created per connection; the price is
 * that a worker holds its connection for the connection's whole life,
 * keep-alive waits included, so N bounds the connections served at once.
 *
 * Backpressure: when the queue is full the acceptor stops accepting until a
 * worker takes one, and further clients wait in the kernel's listen
 * backlog (then in SYN retries): nothing is accepted that cannot be served
 * soon.  While connections are queued, workers give way: they answer
 * "Connection: close" and end idle keep-alive waits (sp_conn_server.busy),
 * so queued clients are not starved by idle ones. */
#define _GNU_SOURCE
#include "models/conn.h"
#include "models/server.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 64 workers: more than the 50 concurrent keep-alive clients a typical
 * ab/wrk run opens, so that run is not a queueing test. */
#define POOL_DEFAULT_WORKERS 64
/* Queue slots per worker: a short burst is absorbed; a longer one is left
 * in the listen backlog, where it costs us nothing. */
#define POOL_QUEUE_PER_WORKER 2
#define POOL_STACK (256u * 1024) /* as thread.c's THREAD_STACK */

typedef struct pool_entry {
    int fd;
    socklen_t len;
    struct sockaddr_storage peer;
} pool_entry;

typedef struct pool_server {
    sp_conn_server srv;
    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull;
    pool_entry *q;
    unsigned cap, head;
    _Atomic unsigned count; /* written under lock; read without by busy() */
    _Atomic unsigned idle;  /* workers waiting for a connection */
    bool closed;            /* no more pushes: workers drain, then leave */
} pool_server;

static bool pool_busy(sp_conn_server *srv)
{
    pool_server *p = srv->busy_arg;

    /* Queued connections with a worker free to take them are not waiting
     * for anyone to give way. */
    return atomic_load_explicit(&p->count, memory_order_relaxed) > 0 &&
           atomic_load_explicit(&p->idle, memory_order_relaxed) == 0;
}

static void *worker(void *arg)
{
    pool_server *p = arg;
    sp_http_date_cache date; /* one per worker thread */
    sp_conn *c = sp_conn_new(&p->srv);

    sp_http_date_cache_init(&date);
    for (;;) {
        pool_entry e;

        pthread_mutex_lock(&p->lock);
        atomic_fetch_add(&p->idle, 1);
        while (atomic_load(&p->count) == 0 && !p->closed)
            pthread_cond_wait(&p->nonempty, &p->lock);
        atomic_fetch_sub(&p->idle, 1);
        if (atomic_load(&p->count) == 0) {
            pthread_mutex_unlock(&p->lock);
            break; /* closed and drained */
        }
        e = p->q[p->head];
        p->head = (p->head + 1) % p->cap;
        atomic_fetch_sub(&p->count, 1);
        pthread_cond_signal(&p->nonfull);
        pthread_mutex_unlock(&p->lock);
        if (!c) {
            close(e.fd); /* no memory for a connection: refuse it */
            continue;
        }
        sp_conn_start(c, e.fd, (struct sockaddr *)&e.peer, e.len, &date);
        sp_conn_serve(c);
    }
    sp_conn_free(c);
    return NULL;
}

static void push(pool_server *p, const pool_entry *e)
{
    pthread_mutex_lock(&p->lock);
    /* Full: wait for a worker.  Workers always make progress (every
     * connection ends by its timeouts), so this wait ends too. */
    while (atomic_load(&p->count) == p->cap)
        pthread_cond_wait(&p->nonfull, &p->lock);
    p->q[(p->head + atomic_load(&p->count)) % p->cap] = *e;
    atomic_fetch_add(&p->count, 1);
    pthread_cond_signal(&p->nonempty);
    pthread_mutex_unlock(&p->lock);
}

static int pool_serve(const sp_server_opts *o)
{
    int n = o->workers > 0 ? o->workers : POOL_DEFAULT_WORKERS;
    pool_server p;
    pthread_attr_t attr;
    pthread_t *tids;
    int lfd, port, rc, started = 0;

    lfd = sp_server_listen(o, SP_SERVER_NONBLOCK, &port);
    if (lfd < 0) {
        fprintf(stderr, "spindle serve: listen: %s\n", strerror(errno));
        return 1;
    }
    rc = sp_conn_server_init(&p.srv, o, &sp_conn_ops_blocking, port);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: %s\n", strerror(-rc));
        close(lfd);
        return 1;
    }
    p.srv.busy = pool_busy;
    p.srv.busy_arg = &p;
    p.cap = (unsigned)n * POOL_QUEUE_PER_WORKER;
    p.head = 0;
    atomic_init(&p.count, 0);
    atomic_init(&p.idle, 0);
    p.closed = false;
    p.q = calloc(p.cap, sizeof *p.q);
    tids = calloc((size_t)n, sizeof *tids);
    if (!p.q || !tids) {
        fprintf(stderr, "spindle serve: out of memory\n");
        rc = 1;
        goto out;
    }
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.nonempty, NULL);
    pthread_cond_init(&p.nonfull, NULL);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, POOL_STACK);
    for (; started < n; started++)
        if (pthread_create(&tids[started], &attr, worker, &p) != 0)
            break;
    pthread_attr_destroy(&attr);
    if (started < n) {
        fprintf(stderr, "spindle serve: started %d of %d workers\n", started, n);
        if (started == 0) {
            rc = 1;
            goto out;
        }
    }
    sp_server_ready(port, "pool", NULL);

    for (;;) {
        pool_entry e;

        e.fd = sp_server_accept(lfd, &e.peer, &e.len);
        if (e.fd < 0) {
            if (errno == ECANCELED)
                break;
            perror("spindle serve: accept");
            continue;
        }
        push(&p, &e);
    }
    /* Stopping: accept nothing more; the workers serve what is queued and
     * finish what they read. */
    close(lfd);
    lfd = -1;
    pthread_mutex_lock(&p.lock);
    p.closed = true;
    pthread_cond_broadcast(&p.nonempty);
    pthread_mutex_unlock(&p.lock);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    rc = 0;
out:
    if (lfd >= 0)
        close(lfd);
    free(tids);
    free(p.q);
    sp_conn_server_destroy(&p.srv);
    return rc;
}

const sp_model sp_model_pool = {
    .name = "pool",
    .summary = "a fixed pool of threads fed by a bounded queue",
    .serve = pool_serve,
};
