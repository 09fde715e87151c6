/* The server around an event loop, shared by the epoll, callback and
 * stackless models: options, the stop, listener, timers, helper threads, CGI
 * children, connection blocks.  See evm.h. */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "models/evm.h"
#include "models/server.h"

#define ALIGN64(x) (((x) + 63u) & ~(size_t)63u)

/* ---- timers ---------------------------------------------------------------- */

static void heap_place(sp__evm_heap *h, size_t i, sp__evm_timer *t)
{
    h->v[i] = t;
    t->slot = i + 1;
}

static void sift_up(sp__evm_heap *h, size_t i)
{
    sp__evm_timer *t = h->v[i];

    while (i > 0) {
        size_t p = (i - 1) / 2;

        if (h->v[p]->key <= t->key)
            break;
        heap_place(h, i, h->v[p]);
        i = p;
    }
    heap_place(h, i, t);
}

static void sift_down(sp__evm_heap *h, size_t i)
{
    sp__evm_timer *t = h->v[i];

    for (;;) {
        size_t l = 2 * i + 1, m = i;

        if (l >= h->n)
            break;
        m = l + 1 < h->n && h->v[l + 1]->key < h->v[l]->key ? l + 1 : l;
        if (h->v[m]->key >= t->key)
            break;
        heap_place(h, i, h->v[m]);
        i = m;
    }
    heap_place(h, i, t);
}

static int heap_push(sp__evm_heap *h, sp__evm_timer *t)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 256;
        sp__evm_timer **v = realloc(h->v, cap * sizeof *v);

        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->key = t->deadline;
    heap_place(h, h->n++, t);
    sift_up(h, h->n - 1);
    return 0;
}

void sp__evm_timer_remove(sp__evm_heap *h, sp__evm_timer *t)
{
    size_t i;

    t->deadline = -1;
    if (!t->slot)
        return;
    i = t->slot - 1;
    t->slot = 0;
    if (i == --h->n)
        return;
    heap_place(h, i, h->v[h->n]);
    /* the moved entry may belong above or below its new place */
    sift_up(h, i);
    sift_down(h, h->v[i]->slot - 1);
}

int sp__evm_timer_set(sp__evm_heap *h, sp__evm_timer *t, int64_t deadline)
{
    t->deadline = deadline;
    if (deadline < 0)
        return 0; /* a stale entry may stay: it is dropped when it comes up */
    if (!t->slot)
        return heap_push(h, t);
    if (deadline < t->key) {
        t->key = deadline;
        sift_up(h, t->slot - 1);
    }
    return 0;
}

sp__evm_timer *sp__evm_timer_expired(sp__evm_heap *h, int64_t now)
{
    while (h->n && h->v[0]->key <= now) {
        sp__evm_timer *t = h->v[0];

        if (t->deadline < 0) {
            sp__evm_timer_remove(h, t); /* cleared meanwhile: drop */
        } else if (t->deadline != t->key) {
            /* moved later meanwhile: reorder first, even if due, so that
             * the timer fired is always the one with the earliest deadline
             * (every key is at most its timer's deadline) */
            t->key = t->deadline;
            sift_down(h, 0);
        } else {
            sp__evm_timer_remove(h, t); /* clears the deadline: fires once */
            return t;
        }
    }
    return NULL;
}

int64_t sp__evm_timer_next(const sp__evm_heap *h)
{
    return h->n ? h->v[0]->key : -1;
}

void sp__evm_heap_free(sp__evm_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

/* ---- helper threads -------------------------------------------------------- */

/* The spawn of a CGI script (see sp__evm_cgi_job): the body is already in
 * the stdin pipe, whose write end the loop has closed. */
static int spawn_job(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;
    int rc = sp_cgi_spawn(&c->srv->cs, &c->req, c->act,
                          (const struct sockaddr *)&c->peer,
                          c->req.body_kind == SP_HTTP_BODY_NONE
                              ? -1
                              : (int64_t)c->body.total,
                          g->in_r, &g->p);

    return rc < 0 ? -rc : 0;
}

static void run_job(sp__evm_job *j)
{
    j->err = 0;
    if (j->kind == SP__EVM_JOB_OPEN) {
        j->fd = sp_http_static_open(j->root_fd, j->rel, &j->st);
        if (j->fd < 0)
            j->err = errno;
    } else {
        j->err = spawn_job(j->conn);
    }
}

static void *helper_main(void *arg)
{
    sp__evm_pool *p = arg;
    uint64_t one = 1;

    for (;;) {
        sp__evm_job *j;

        pthread_mutex_lock(&p->mu);
        while (!p->todo && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        j = p->todo;
        if (!j) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->todo = j->next;
        pthread_mutex_unlock(&p->mu);

        run_job(j);

        pthread_mutex_lock(&p->mu);
        j->next = p->done;
        p->done = j;
        pthread_mutex_unlock(&p->mu);
        /* an eventfd add never blocks short of 2^64 - 2 pending wakes */
        if (write(p->efd, &one, sizeof one) < 0)
            assert(!"eventfd write failed");
    }
}

static int pool_start(sp__evm_pool *p)
{
    memset(p, 0, sizeof *p);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0)
        return -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < SP__EVM_HELPERS; i++) {
        int rc = pthread_create(&p->th[i], NULL, helper_main, p);

        if (rc != 0) {
            errno = rc;
            if (p->nthreads == 0)
                return -1;
            break; /* one thread is enough to serve, just slower */
        }
        p->nthreads++;
    }
    return 0;
}

static void pool_stop(sp__evm_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->th[i], NULL);
    p->nthreads = 0;
}

void sp__evm_submit(sp__evm_conn *c)
{
    sp__evm_pool *p = &c->srv->pool;

    assert(!c->job_busy);
    c->job_busy = true;
    if (c->job.kind == SP__EVM_JOB_SPAWN)
        c->srv->spawning++;
    c->job.next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->todo)
        p->todo_tail->next = &c->job;
    else
        p->todo = &c->job;
    p->todo_tail = &c->job;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void io_release(sp__evm_server *s, sp__evm_conn *c);

/* The I/O block goes back here, not at the close: a helper may still be
 * reading the request (the static path) from it until its job is done. */
static void block_free(sp__evm_server *s, sp__evm_conn *c)
{
    io_release(s, c);
    c->next = s->free_list;
    s->free_list = c;
    s->nlive--;
}

sp__evm_job *sp__evm_pool_done(sp__evm_server *s)
{
    sp__evm_pool *p = &s->pool;
    sp__evm_job *j, *next, *out = NULL;
    uint64_t n;

    if (read(p->efd, &n, sizeof n) < 0 && errno != EAGAIN)
        return NULL;
    pthread_mutex_lock(&p->mu);
    j = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    /* `done` is newest first; reversing gives completion order */
    for (; j; j = next) {
        sp__evm_conn *c = sp__container_of(j, sp__evm_conn, job);

        next = j->next;
        c->job_busy = false;
        if (j->kind == SP__EVM_JOB_SPAWN)
            s->spawning--;
        if (c->fd >= 0) {
            j->next = out;
            out = j;
            continue;
        }
        /* closed while the helper worked: undo what the job made */
        if (j->kind == SP__EVM_JOB_OPEN && j->fd >= 0)
            close(j->fd);
        sp__evm_cgi_release(c);
        block_free(s, c);
    }
    return out;
}

/* ---- children ---------------------------------------------------------------- */

void sp__evm_child_done(sp__evm_server *s, sp_cgi_proc *p)
{
    if (p->pidfd >= 0)
        close(p->pidfd); /* we look again on a timer, not on the pidfd */
    p->pidfd = -1;
    if (p->pid <= 0 || sp_cgi_reap(p, false) != 0)
        return; /* reaped, or not ours any more */
    if (s->nchildren == s->children_cap) {
        size_t cap = s->children_cap ? 2 * s->children_cap : 16;
        sp_cgi_proc *v = realloc(s->children, cap * sizeof *v);

        if (!v)
            return; /* a zombie until we exit: better than failing */
        s->children = v;
        s->children_cap = cap;
    }
    if (s->nchildren == 0)
        s->reap_at = s->now + SP__EVM_REAP_MS * SP__EVM_MS;
    s->children[s->nchildren++] = *p;
    p->pid = 0;
}

static void reap_children(sp__evm_server *s)
{
    size_t i = 0;

    while (i < s->nchildren) {
        if (sp_cgi_reap(&s->children[i], false) != 0)
            s->children[i] = s->children[--s->nchildren];
        else
            i++;
    }
    s->reap_at = s->now + SP__EVM_REAP_MS * SP__EVM_MS;
}

/* ---- stop ----------------------------------------------------------------------- */

bool sp__evm_stop_seen(sp__evm_server *s)
{
    if (s->stopping || !sp_server_stopping())
        return false;
    s->stopping = true;
    return true;
}

/* ---- listener ------------------------------------------------------------------ */

void sp__evm_ready(const sp__evm_server *s)
{
    sp_server_ready(s->port, s->model, NULL);
}

void sp__evm_stop_listening(sp__evm_server *s)
{
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
}

void sp__evm_accept_pause(sp__evm_server *s)
{
    s->accept_paused = true;
    s->accept_resume = s->now + SP__EVM_ACCEPT_PAUSE_MS * SP__EVM_MS;
}

bool sp__evm_accept_due(sp__evm_server *s)
{
    if (!s->accept_paused || s->now < s->accept_resume || s->listen_fd < 0)
        return false;
    s->accept_paused = false;
    s->accept_resume = -1;
    return true;
}

/* ---- connection blocks ------------------------------------------------------------ */

static sp__evm_conn *conn_new(sp__evm_server *s, int fd)
{
    sp__evm_conn *c = s->free_list;

    if (c) {
        s->free_list = c->next;
    } else {
        c = aligned_alloc(64, s->model_size);
        if (!c)
            return NULL;
    }
    memset(c, 0, s->model_size);
    c->srv = s;
    c->fd = fd;
    c->id = ++s->next_id;
    c->timer.deadline = -1;
    c->in = c->out = NULL; /* lent at the first read, with the headers */
    c->file_fd = -1;
    c->fresh = true;
    c->req_start = s->now;
    sp_http_request_init(&c->req, NULL, s->limits.max_headers, &s->limits);
    c->next = s->live;
    c->prev = NULL;
    if (s->live)
        s->live->prev = c;
    s->live = c;
    s->nlive++;
    return c;
}

/* Out of descriptors: accept the pending connection with the reserve and
 * close it at once, so that the client learns and the backlog drains
 * instead of waking us forever (libuv's uv__emfile_trick). */
static sp__evm_conn *shed(sp__evm_server *s)
{
    int fd;

    if (s->spare_fd < 0) {
        errno = EMFILE;
        return NULL;
    }
    close(s->spare_fd);
    fd = accept(s->listen_fd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    errno = fd >= 0 && s->spare_fd >= 0 ? EINTR : EMFILE;
    return NULL;
}

sp__evm_conn *sp__evm_accept(sp__evm_server *s)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    sp__evm_conn *c;
    int fd, one = 1;

    fd = accept4(s->listen_fd, (struct sockaddr *)&peer, &len,
                 SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        switch (errno) {
        case EAGAIN:
            return NULL;
        case EMFILE:
        case ENFILE:
            return shed(s);
        case ENOBUFS:
        case ENOMEM:
            errno = EMFILE; /* the kernel is short: pause like EMFILE */
            return NULL;
        default:
            errno = EINTR; /* ECONNABORTED and the like: next one */
            return NULL;
        }
    }
    c = conn_new(s, fd);
    if (!c) {
        close(fd);
        errno = EMFILE;
        return NULL;
    }
    /* answers go out in one write, but a static head and its file are two:
     * Nagle would hold the file's last segment for the client's delayed ACK */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memcpy(&c->peer, &peer, len < sizeof peer ? len : sizeof peer);
    return c;
}

void sp__evm_close(sp__evm_conn *c)
{
    sp__evm_server *s = c->srv;

    if (c->fd < 0)
        return;
    sp__evm_close_fd(s, c->fd);
    c->fd = -1;
    if (c->file_fd >= 0)
        close(c->file_fd);
    c->file_fd = -1;
    if (!c->job_busy)
        sp__evm_cgi_release(c);
    sp__evm_timer_remove(&s->timers, &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->job_busy)
        return; /* sp__evm_pool_done frees it when the helper is done */
    c->next = s->dead;
    s->dead = c;
}

void sp__evm_close_fd(sp__evm_server *s, int fd)
{
    if (s->spawning > 0 && s->epfd >= 0)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

void sp__evm_free_dead(sp__evm_server *s)
{
    while (s->dead) {
        sp__evm_conn *c = s->dead;

        s->dead = c->next;
        block_free(s, c);
    }
}

void sp__evm_arm(sp__evm_conn *c, sp__evm_timer_for what, int64_t ns)
{
    sp__evm_server *s = c->srv;

    c->timer_for = ns < 0 ? SP__EVM_T_NONE : what;
    if (sp__evm_timer_set(&s->timers, &c->timer, ns < 0 ? -1 : s->now + ns) < 0)
        sp__fatal("evm: out of memory for a timer"); /* it would hang the conn */
}

/* ---- the server ------------------------------------------------------------------- */

void sp__evm_tick(sp__evm_server *s)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    s->now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    /* the coarse clock is a memory read; a Date needs only the second */
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    s->date_text = sp_http_date_get(&s->date, (int64_t)ts.tv_sec);
    if (s->nchildren && s->now >= s->reap_at)
        reap_children(s);
}

int sp__evm_wait_ms(const sp__evm_server *s)
{
    int64_t next = sp__evm_timer_next(&s->timers), d;

    if (s->accept_paused && (next < 0 || s->accept_resume < next))
        next = s->accept_resume;
    if (s->nchildren && (next < 0 || s->reap_at < next))
        next = s->reap_at;
    if (next < 0)
        return -1;
    if (next <= s->now)
        return 0;
    d = (next - s->now + SP__EVM_MS - 1) / SP__EVM_MS;
    return d > INT_MAX ? INT_MAX : (int)d;
}

static int64_t timeout_ns(int64_t ms)
{
    return ms > 0 ? ms * SP__EVM_MS : -1; /* 0 or less: none */
}

static void layout(sp__evm_server *s, size_t model_size)
{
    sp_http_limits *l = &s->limits;

    s->model_size = ALIGN64(model_size);
    s->in_cap = l->max_request_line + l->max_header_bytes + SP__EVM_IN_SLACK;
    s->io_out_off = ALIGN64(s->in_cap);
    s->io_hdr_off = ALIGN64(s->io_out_off + SP__EVM_OUT_CAP);
    s->io_act_off = ALIGN64(s->io_hdr_off + l->max_headers * sizeof(sp_http_header));
    s->io_size = ALIGN64(s->io_act_off + sizeof(sp_http_action));
}

int sp__evm_io_get(sp__evm_conn *c)
{
    sp__evm_server *s = c->srv;
    char *b;

    if (c->in)
        return 0;
    if (!(b = sp_conn_io_take(&s->io, s->io_size)))
        return -1;
    c->in = b;
    c->out = b + s->io_out_off;
    /* Nothing is parsed or routed while no block is held (no byte is
     * buffered, no request is in hand). */
    c->req.headers = (sp_http_header *)(void *)(b + s->io_hdr_off);
    c->act = (sp_http_action *)(void *)(b + s->io_act_off);
    return 0;
}

static void io_release(sp__evm_server *s, sp__evm_conn *c)
{
    if (!c->in)
        return;
    c->in_start = c->in_pos = c->in_end = 0;
    c->out_off = c->out_len = 0;
    sp_conn_io_give(&s->io, c->in, s->io_size, SIZE_MAX);
    c->in = c->out = NULL;
    c->req.headers = NULL;
    c->act = NULL;
}

void sp__evm_io_put(sp__evm_conn *c)
{
    if (c->in && c->fd >= 0 && sp__evm_idle(c))
        io_release(c->srv, c);
}

int sp__evm_server_init(sp__evm_server *s, const sp_server_opts *o,
                        const char *model, size_t model_size)
{
    const sp_http_limits *d = &sp_http_default_limits;
    int rc;

    memset(s, 0, sizeof *s);
    s->o = o;
    s->model = model;
    s->listen_fd = s->spare_fd = s->stop_fd = s->epfd = -1;
    s->cs.root_fd = -1;
    s->pool.efd = -1;
    s->accept_resume = -1;
    s->limits = o->limits;
    if (!s->limits.max_request_line)
        s->limits.max_request_line = d->max_request_line;
    if (!s->limits.max_header_bytes)
        s->limits.max_header_bytes = d->max_header_bytes;
    if (!s->limits.max_headers)
        s->limits.max_headers = d->max_headers;
    if (!s->limits.max_body)
        s->limits.max_body = d->max_body;
    s->header_timeout = timeout_ns(o->header_timeout_ms);
    s->idle_timeout = timeout_ns(o->idle_timeout_ms);
    layout(s, model_size);
    sp_http_date_cache_init(&s->date);
    sp__evm_tick(s);

    /* `spindle serve` installs the stop before any model runs; a program
     * that calls a model directly (our tests) gets it here */
    if (sp_server_stop_fd() < 0 && (rc = sp_server_signals_init()) < 0) {
        fprintf(stderr, "spindle serve: signals: %s\n", strerror(-rc));
        goto fail;
    }
    s->stop_fd = sp_server_stop_fd();
    s->listen_fd = sp_server_listen(o, SP_SERVER_NONBLOCK, &s->port);
    if (s->listen_fd < 0) {
        fprintf(stderr, "spindle serve: listen on %s:%d: %s\n",
                o->host ? o->host : "*", o->port, strerror(errno));
        goto fail;
    }
    rc = sp_conn_server_init(&s->cs, o, &sp_conn_ops_blocking, s->port);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: --root %s / --cgi-dir %s: %s\n",
                o->root ? o->root : "-", o->cgi_dir ? o->cgi_dir : "-",
                strerror(-rc));
        s->cs.root_fd = -1;
        s->cs.cgi_dir = NULL;
        goto fail;
    }
    s->cs_ready = true;
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (pool_start(&s->pool) < 0) {
        fprintf(stderr, "spindle serve: helper threads: %s\n", strerror(errno));
        goto fail;
    }
    return 0;

fail:
    sp__evm_server_fini(s);
    return -1;
}

void sp__evm_server_fini(sp__evm_server *s)
{
    sp__evm_conn *c;

    /* normally none is left; after a failed epoll_wait some may be */
    while (s->live)
        sp__evm_close(s->live);
    if (s->pool.efd >= 0) {
        pool_stop(&s->pool);
        sp__evm_pool_done(s); /* frees the blocks of jobs that were out */
        pthread_cond_destroy(&s->pool.cv);
        pthread_mutex_destroy(&s->pool.mu);
        close(s->pool.efd);
        s->pool.efd = -1;
    }
    sp__evm_free_dead(s);
    reap_children(s);
    free(s->children);
    s->children = NULL;
    s->nchildren = 0;
    while ((c = s->free_list)) {
        s->free_list = c->next;
        free(c);
    }
    sp_conn_io_pool_drain(&s->io);
    sp__evm_heap_free(&s->timers);
    sp__evm_stop_listening(s);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    s->spare_fd = -1;
    if (s->cs_ready)
        sp_conn_server_destroy(&s->cs);
    s->cs_ready = false;
}
