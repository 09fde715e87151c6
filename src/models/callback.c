/* The callback model: one thread, continuation-passing style, in the manner
 * of libuv and Node.  Every asynchronous step takes the function that
 * continues it:
 *
 *     read_async(c, on_head_bytes)        the socket has bytes (or EOF)
 *     write_async(c, on_answer_written)   the output buffer is written
 *     sendfile_async(c, on_file_sent)     the static file is sent
 *     sleep_async(c, ms, on_slept)        the time has passed
 *     open_async(c, on_opened)            a helper thread opened the file
 *     spawn_async(c, on_spawned)          a helper thread started the script
 *     pipe_read_async(c, on_cgi_output)   the script wrote (or ended)
 *     drain_async(c, on_drained)          a lingering close saw EOF
 *
 * and a request is a chain of such callbacks; no function waits, none
 * keeps a state variable saying where the connection is: where it is, is
 * which continuation is pending.
 *
 * A continuation always runs from the loop, never inside the call that
 * asked for it, even when the operation completes at once (Node's rule,
 * "never release Zalgo"): completions go on a FIFO of tasks that the loop
 * runs before it polls again, so that chains of immediate completions
 * (pipelined requests) neither grow the stack nor starve other connections.
 *
 * A connection's deadline (header, idle, I/O, CGI, linger) completes the
 * pending operation with -ETIMEDOUT; its continuation decides what that
 * means.  Descriptors are registered once, edge-triggered. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common.h"
#include "models/evm.h"

typedef struct cb_conn cb_conn;

/* A continuation: `st` is the operation's result (bytes, 0, or -errno). */
typedef void (*cb_fn)(cb_conn *c, ssize_t st);

typedef enum cb_kind { W_LISTEN, W_STOP, W_POOL, W_SOCK, W_PIPE_OUT } cb_kind;

/* What an epoll event's data.ptr points to. */
typedef struct cb_watch {
    cb_kind kind;
} cb_watch;

/* The non-blocking operation a pending continuation waits for. */
typedef enum cb_op { OP_NONE, OP_READ, OP_WRITE, OP_SENDFILE, OP_DRAIN } cb_op;

struct cb_conn {
    sp__evm_conn x; /* first: the block starts with it */
    cb_watch sock, pipe_out;
    cb_op sock_op;  /* what sock_k waits for */
    cb_fn sock_k;   /* pending on the socket */
    cb_fn pout_k;   /* pending on the script's stdout */
    cb_fn timer_k;  /* pending on a sleep */
    cb_fn job_k;    /* pending on a helper thread */
};

/* A continuation ready to run. */
typedef struct cb_task {
    cb_conn *c;
    uint64_t id; /* c->x.id when queued: a closed, reused block's differs */
    cb_fn k;
    ssize_t st;
} cb_task;

typedef struct cb_loop {
    sp__evm_server s;
    int epfd;
    cb_watch listen, stop, pool;
    cb_task *tasks; /* a ring; grows by doubling, never per request */
    size_t head, count, cap;
} cb_loop;

/* One loop per thread; the callbacks reach it through here rather than
 * through every signature. */
static cb_loop *loop;

/* ---- the loop's primitives ------------------------------------------------ */

/* Runs k(c, st) from the loop, soon. */
static void defer(cb_conn *c, cb_fn k, ssize_t st)
{
    cb_loop *L = loop;

    if (L->count == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 1024;
        cb_task *t = malloc(cap * sizeof *t);

        if (!t)
            sp__fatal("callback: out of memory for the task queue");
        for (size_t i = 0; i < L->count; i++)
            t[i] = L->tasks[(L->head + i) % L->cap];
        free(L->tasks);
        L->tasks = t;
        L->head = 0;
        L->cap = cap;
    }
    L->tasks[(L->head + L->count++) % L->cap] = (cb_task){c, c->x.id, k, st};
}

/* Runs the tasks queued before this call (not those they queue: the loop
 * polls in between, so a busy connection cannot starve the others). */
static void run_tasks(void)
{
    cb_loop *L = loop;

    for (size_t n = L->count; n > 0; n--) {
        cb_task t = L->tasks[L->head];

        L->head = (L->head + 1) % L->cap;
        L->count--;
        if (t.c->x.fd >= 0 && t.c->x.id == t.id)
            t.k(t.c, t.st); /* else its connection closed meanwhile */
    }
}

static cb_fn take(cb_fn *slot)
{
    cb_fn k = *slot;

    *slot = NULL;
    return k;
}

static void cb_close(cb_conn *c)
{
    c->sock_k = c->pout_k = c->timer_k = c->job_k = NULL;
    c->sock_op = OP_NONE;
    sp__evm_close(&c->x);
}

static void sock_retry(cb_conn *c, ssize_t st);

/* Tries the socket operation; true when it completed (*st set). */
static bool sock_try(cb_conn *c, cb_op op, ssize_t *st)
{
    sp__evm_conn *x = &c->x;
    int r;

    switch (op) {
    case OP_READ:
        if (!x->rd_ready)
            return false;
        *st = sp__evm_read(x);
        if (*st < 0 && (errno == EAGAIN || errno == EINTR))
            return false;
        if (*st < 0)
            *st = -errno;
        return true;
    case OP_DRAIN:
        if (!sp__evm_drain(x))
            return false;
        *st = 0;
        return true;
    case OP_WRITE:
    case OP_SENDFILE:
        if (!x->wr_ready)
            return false;
        r = op == OP_WRITE ? sp__evm_flush(x) : sp__evm_sendfile(x);
        if (r == 0) {
            sp__evm_arm_io(x); /* no progress for idle_timeout: the end */
            return false;
        }
        if (r == 2) {
            /* a large file's share for this turn is out, and no event will
             * say the socket takes more: try again from the task queue */
            defer(c, sock_retry, 0);
            return false;
        }
        *st = r < 0 ? -EPIPE : 0;
        return true;
    case OP_NONE:
        break;
    }
    return false;
}

/* Starts a socket operation: completes it now (through the task queue) or
 * parks k until the socket is ready. */
static void sock_async(cb_conn *c, cb_op op, cb_fn k)
{
    ssize_t st;

    if (sock_try(c, op, &st)) {
        defer(c, k, st);
        return;
    }
    if (op == OP_WRITE || op == OP_SENDFILE)
        sp__evm_arm_io(&c->x);
    c->sock_op = op;
    c->sock_k = k;
}

/* A task: tries the pending socket operation again. */
static void sock_retry(cb_conn *c, ssize_t st)
{
    if (c->sock_k && sock_try(c, c->sock_op, &st)) {
        c->sock_op = OP_NONE;
        take(&c->sock_k)(c, st);
    }
}

static void read_async(cb_conn *c, cb_fn k) { sock_async(c, OP_READ, k); }
static void write_async(cb_conn *c, cb_fn k) { sock_async(c, OP_WRITE, k); }
static void sendfile_async(cb_conn *c, cb_fn k) { sock_async(c, OP_SENDFILE, k); }
static void drain_async(cb_conn *c, cb_fn k) { sock_async(c, OP_DRAIN, k); }

static void sleep_async(cb_conn *c, uint32_t ms, cb_fn k)
{
    c->timer_k = k;
    sp__evm_arm(&c->x, SP__EVM_T_SLEEP, (int64_t)ms * SP__EVM_MS);
}

/* c->x.job is filled (sp__evm_static_job / sp__evm_cgi_job). */
static void job_async(cb_conn *c, cb_fn k)
{
    c->job_k = k;
    sp__evm_submit(&c->x);
}

static void open_async(cb_conn *c, cb_fn k) { job_async(c, k); }
static void spawn_async(cb_conn *c, cb_fn k) { job_async(c, k); }

static void pipe_read_async(cb_conn *c, cb_fn k)
{
    ssize_t n = sp__evm_cgi_read(&c->x);

    if (n >= 0)
        defer(c, k, n);
    else
        c->pout_k = k;
}

/* ---- a request, as a chain of continuations ------------------------------- */

static void serve_next(cb_conn *c, ssize_t st);
static void read_body(cb_conn *c, ssize_t st);
static void on_continue_sent(cb_conn *c, ssize_t st);
static void answered(cb_conn *c);
static void relay(cb_conn *c, ssize_t st);

static void on_drained(cb_conn *c, ssize_t st)
{
    cb_close(c); /* EOF, error or the linger timer: all end here */
}

static void on_last_written(cb_conn *c, ssize_t st)
{
    if (st < 0 || !sp__evm_wants_linger(&c->x)) {
        cb_close(c);
        return;
    }
    sp__evm_linger(&c->x);
    drain_async(c, on_drained);
}

static void on_answer_written(cb_conn *c, ssize_t st)
{
    if (st < 0)
        cb_close(c);
    else
        serve_next(c, 0);
}

static void on_head_bytes(cb_conn *c, ssize_t st)
{
    if (st == -ETIMEDOUT && sp__evm_timeout_answer(&c->x)) {
        write_async(c, on_last_written); /* 408: the head took too long */
    } else if (st < 0) {
        cb_close(c); /* idle keep-alive timeout, or a reset */
    } else {
        serve_next(c, 0); /* bytes or EOF: parse, then decide */
    }
}

/* Reads and parses the next request head; the connection's main loop. */
static void serve_next(cb_conn *c, ssize_t st)
{
    sp__evm_conn *x = &c->x;

    switch (sp__evm_head(x)) {
    case SP__EVM_OK:
        read_body(c, 0);
        return;
    case SP__EVM_FAIL:
        write_async(c, on_last_written);
        return;
    }
    if (x->out_len)
        write_async(c, on_answer_written); /* answers out before we wait */
    else if (x->peer_eof || (loop->s.stopping && sp__evm_idle(x)))
        cb_close(c);
    else
        read_async(c, on_head_bytes);
}

static void on_body_bytes(cb_conn *c, ssize_t st)
{
    if (st < 0)
        cb_close(c);
    else
        read_body(c, 0);
}

static void on_slept(cb_conn *c, ssize_t st)
{
    sp__evm_reply(&c->x);
    answered(c);
}

static void on_file_sent(cb_conn *c, ssize_t st)
{
    if (st < 0)
        cb_close(c);
    else
        answered(c);
}

static void on_file_head_written(cb_conn *c, ssize_t st)
{
    if (st < 0)
        cb_close(c);
    else
        sendfile_async(c, on_file_sent);
}

static void on_opened(cb_conn *c, ssize_t st)
{
    sp__evm_static_opened(&c->x);
    if (c->x.file_fd >= 0)
        write_async(c, on_file_head_written);
    else
        answered(c);
}

static void on_cgi_flushed(cb_conn *c, ssize_t st)
{
    if (st < 0)
        cb_close(c);
    else
        relay(c, 0);
}

static void on_cgi_output(cb_conn *c, ssize_t st)
{
    if (st == -ETIMEDOUT && !sp__evm_cgi_timeout(&c->x)) {
        cb_close(c); /* over its time mid-body: only a close says so */
        return;
    }
    relay(c, 0);
}

/* Moves the script's output to the client until the pump says DONE. */
static void relay(cb_conn *c, ssize_t st)
{
    switch (sp__evm_cgi_pump(&c->x)) {
    case SP__EVM_CGI_DONE:
        answered(c);
        return;
    case SP__EVM_CGI_FLUSH:
        write_async(c, on_cgi_flushed);
        return;
    case SP__EVM_CGI_READ:
        pipe_read_async(c, on_cgi_output);
        return;
    }
}

static void on_spawned(cb_conn *c, ssize_t st)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &c->pipe_out};

    if (!sp__evm_cgi_spawned(&c->x)) {
        answered(c);
        return;
    }
    c->pipe_out.kind = W_PIPE_OUT;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, c->x.cgi->p.out_fd, &ev) < 0) {
        cb_close(c);
        return;
    }
    relay(c, 0);
}

/* Starts what the router chose for a request whose body is in. */
static void act(cb_conn *c)
{
    sp__evm_conn *x = &c->x;

    switch (x->act->kind) {
    case SP_HTTP_ACT_RESPOND:
        sp__evm_reply(x);
        answered(c);
        return;
    case SP_HTTP_ACT_SLEEP:
        sleep_async(c, x->act->sleep_ms, on_slept);
        return;
    case SP_HTTP_ACT_STATIC:
        if (sp__evm_static_job(x))
            open_async(c, on_opened);
        else
            answered(c);
        return;
    case SP_HTTP_ACT_CGI:
        if (sp__evm_cgi_job(x))
            spawn_async(c, on_spawned);
        else
            answered(c);
        return;
    }
}

/* The 100 Continue is out: now the client sends the body. */
static void on_continue_sent(cb_conn *c, ssize_t st)
{
    if (st < 0)
        cb_close(c);
    else
        read_body(c, 0);
}

static void read_body(cb_conn *c, ssize_t st)
{
    sp__evm_conn *x = &c->x;

    switch (sp__evm_body(x)) {
    case SP__EVM_OK:
        act(c);
        return;
    case SP__EVM_FAIL:
        write_async(c, on_last_written);
        return;
    }
    if (x->out_len)
        write_async(c, on_continue_sent);
    else if (x->peer_eof)
        cb_close(c);
    else
        read_async(c, on_body_bytes);
}

/* The answer is queued in full: the next request (a pipelined one is
 * answered into the same buffer), or the last write and the close. */
static void answered(cb_conn *c)
{
    sp__evm_conn *x = &c->x;
    bool last = sp__evm_must_close(x);

    sp__evm_next(x);
    if (last)
        write_async(c, on_last_written);
    else if (sp__evm_buffered(x) && !sp__evm_out_full(x))
        defer(c, serve_next, 0);
    else
        write_async(c, on_answer_written);
}

/* ---- events ------------------------------------------------------------------ */

static void on_sock_event(cb_conn *c, uint32_t ev)
{
    sp__evm_conn *x = &c->x;
    ssize_t st;
    cb_fn k;

    if (ev & (EPOLLERR | EPOLLHUP)) {
        /* reset, or both sides shut: the pending step learns it, or, when
         * none waits on the socket, the connection just ends */
        c->sock_op = OP_NONE;
        if ((k = take(&c->sock_k)))
            k(c, -ECONNRESET);
        else
            cb_close(c);
        return;
    }
    if (ev & EPOLLIN)
        x->rd_ready = true;
    if (ev & EPOLLRDHUP)
        x->rdhup = x->rd_ready = true;
    if (ev & EPOLLOUT)
        x->wr_ready = true;
    if (c->sock_k && sock_try(c, c->sock_op, &st)) {
        c->sock_op = OP_NONE;
        take(&c->sock_k)(c, st);
    }
}

static void on_pipe_event(cb_conn *c)
{
    ssize_t n;

    if (!c->x.cgi || c->x.cgi->finished || !c->pout_k)
        return; /* a pipe of a CGI that is over, or not waited on */
    n = sp__evm_cgi_read(&c->x);
    if (n >= 0)
        take(&c->pout_k)(c, n);
}

/* The deadline passed: the step pending on it learns, with -ETIMEDOUT (a
 * sleep with its ordinary completion). */
static void on_timer(cb_conn *c)
{
    cb_fn k;

    if (c->x.timer_for == SP__EVM_T_SLEEP && (k = take(&c->timer_k))) {
        k(c, 0);
    } else if ((k = take(&c->sock_k))) {
        c->sock_op = OP_NONE; /* header, idle, I/O, linger */
        k(c, -ETIMEDOUT);
    } else if ((k = take(&c->pout_k))) {
        k(c, -ETIMEDOUT); /* the script ran past its time */
    } else if (!c->job_k) {
        cb_close(c); /* nothing pending can answer for it */
    }
}

static void on_jobs(void)
{
    sp__evm_job *j, *next;

    for (j = sp__evm_pool_done(&loop->s); j; j = next) {
        cb_conn *c = sp__container_of(j, cb_conn, x.job);

        next = j->next;
        defer(c, take(&c->job_k), 0);
    }
}

static void on_accept(void)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};

    for (;;) {
        sp__evm_conn *x = sp__evm_accept(&loop->s);
        cb_conn *c;

        if (!x) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE) {
                epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->s.listen_fd, NULL);
                sp__evm_accept_pause(&loop->s);
            }
            return;
        }
        c = (cb_conn *)(void *)x;
        c->sock.kind = W_SOCK;
        ev.data.ptr = &c->sock;
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, x->fd, &ev) < 0) {
            cb_close(c);
            continue;
        }
        x->rd_ready = x->wr_ready = true; /* the request may be there */
        serve_next(c, 0);
    }
}

static void on_stop(void)
{
    sp__evm_conn *x, *next;

    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->s.listen_fd, NULL);
    sp__evm_stop_listening(&loop->s);
    for (x = loop->s.live; x; x = next) {
        cb_conn *c = (cb_conn *)(void *)x;

        next = x->next;
        if (c->sock_op == OP_READ && sp__evm_idle(x))
            cb_close(c); /* waiting for a request that has not begun */
    }
}

static void on_event(struct epoll_event *e)
{
    cb_watch *w = e->data.ptr;
    cb_conn *c;

    switch (w->kind) {
    case W_LISTEN:
        if (loop->s.listen_fd >= 0 && !loop->s.accept_paused)
            on_accept();
        return;
    case W_STOP:
        if (sp__evm_stop_seen(&loop->s))
            on_stop();
        return;
    case W_POOL:
        on_jobs();
        return;
    case W_SOCK:
        c = sp__container_of(w, cb_conn, sock);
        break;
    default:
        c = sp__container_of(w, cb_conn, pipe_out);
        break;
    }
    if (c->x.fd < 0)
        return; /* closed earlier in this batch */
    if (w->kind == W_SOCK)
        on_sock_event(c, e->events);
    else
        on_pipe_event(c);
}

static int cb_watch_add(int fd, cb_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};

    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int cb_serve(const sp_server_opts *o)
{
    static cb_loop L; /* one loop, off the stack: it is large */
    struct epoll_event evs[SP__EVM_EVENTS];
    sp__evm_server *s = &L.s;
    int rc = 1;

    memset(&L, 0, sizeof L);
    loop = &L;
    if (sp__evm_server_init(s, o, "callback", sizeof(cb_conn)) < 0)
        return 1;
    L.listen.kind = W_LISTEN;
    L.stop.kind = W_STOP;
    L.pool.kind = W_POOL;
    L.epfd = s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (L.epfd < 0 || cb_watch_add(s->listen_fd, &L.listen, EPOLLIN) < 0 ||
        cb_watch_add(s->stop_fd, &L.stop, EPOLLIN | EPOLLET) < 0 ||
        cb_watch_add(s->pool.efd, &L.pool, EPOLLIN) < 0) {
        fprintf(stderr, "spindle serve: epoll: %s\n", strerror(errno));
        goto out;
    }
    sp__evm_ready(s);
    if (sp__evm_stop_seen(s)) /* asked before we watched the descriptor */
        on_stop();
    while (!s->stopping || s->nlive > 0) {
        sp__evm_timer *t;
        int n = epoll_wait(L.epfd, evs, SP__EVM_EVENTS,
                           L.count ? 0 : sp__evm_wait_ms(s));

        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "spindle serve: epoll_wait: %s\n", strerror(errno));
            goto out;
        }
        sp__evm_tick(s);
        for (int i = 0; i < n; i++)
            on_event(&evs[i]);
        while ((t = sp__evm_timer_expired(&s->timers, s->now)))
            on_timer((cb_conn *)(void *)sp__container_of(t, sp__evm_conn, timer));
        run_tasks();
        if (sp__evm_accept_due(s))
            cb_watch_add(s->listen_fd, &L.listen, EPOLLIN);
        sp__evm_free_dead(s);
    }
    rc = 0;
out:
    if (L.epfd >= 0)
        close(L.epfd);
    sp__evm_server_fini(s);
    free(L.tasks);
    loop = NULL;
    return rc;
}

const sp_model sp_model_callback = {
    .name = "callback",
    .summary = "one thread, epoll, continuation-passing callbacks (libuv/Node "
               "style)",
    .serve = cb_serve,
};
