/* The stackless model: one thread, each connection a stackless coroutine
 * (spindle/stackless.h) written as straight-line code, and a tiny scheduler
 * over epoll that resumes the coroutines whose conditions may have changed.
 *
 * The scheduler knows three things about a connection: its socket's
 * readiness (rd_ready/wr_ready, from edge-triggered events), whether its
 * helper job or its CGI script's output has news (`job_done`,
 * `pipe_ready`), and whether its deadline passed (sl_expired: the timer
 * itself says so, no flag can go stale).  An event sets the flag and puts
 * the coroutine on the run queue; the coroutine's SP_SL_AWAIT conditions
 * read them.  Nothing else is shared between them: what a connection is
 * doing is where its coroutine stands, and its variables live in sl_conn
 * (a stackless coroutine keeps no locals across a suspension).
 *
 * A connection that is reset is closed by the scheduler directly: with no
 * stack to unwind, abandoning a coroutine is forgetting its struct. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <spindle/stackless.h>

#include "common.h"
#include "models/evm.h"

typedef enum sl_kind { K_LISTEN, K_STOP, K_POOL, K_SOCK, K_PIPE } sl_kind;

typedef struct sl_tag {
    sl_kind kind;
} sl_tag;

typedef struct sl_conn sl_conn;

struct sl_conn {
    sp__evm_conn x;    /* first: the block starts with it */
    sp_sl co;          /* the connection's coroutine */
    sp_sl sub;         /* its child coroutine (flush, sendfile) */
    sl_tag sock, pipe;
    bool queued;       /* on the run queue */
    /* what the scheduler tells the coroutine */
    bool job_done, pipe_ready;
    /* the coroutine's variables that outlive a suspension */
    int r;
    bool closing;
    int budget; /* reads left in this resume (SL_READS_PER_RESUME) */
};

/* A run queue entry.  The id tells a stale entry (its connection closed,
 * the block reused by a newer one) from a live one. */
typedef struct sl_entry {
    sl_conn *c;
    uint64_t id;
} sl_entry;

typedef struct sl_sched {
    sp__evm_server s;
    int epfd;
    sl_tag listen, stop, pool;
    sl_entry *run; /* a ring, FIFO; grows by doubling, never per request */
    size_t head, nrun, cap;
} sl_sched;

/* 16 reads in one resume, then the coroutine yields: a client that keeps
 * its pipeline full cannot starve the others. */
#define SL_READS_PER_RESUME 16

static sl_sched *sched;

/* ---- the scheduler ---------------------------------------------------------- */

static void sl_wake(sl_conn *c)
{
    sl_sched *S = sched;

    if (c->queued || c->x.fd < 0)
        return;
    if (S->nrun == S->cap) {
        size_t cap = S->cap ? 2 * S->cap : 1024;
        sl_entry *r = malloc(cap * sizeof *r);

        if (!r)
            sp__fatal("stackless: out of memory for the run queue");
        for (size_t i = 0; i < S->nrun; i++)
            r[i] = S->run[(S->head + i) % S->cap];
        free(S->run);
        S->run = r;
        S->head = 0;
        S->cap = cap;
    }
    c->queued = true;
    S->run[(S->head + S->nrun++) % S->cap] = (sl_entry){c, c->x.id};
}

/* The next live coroutine of the queue, or NULL for a stale entry. */
static sl_conn *sl_pop(void)
{
    sl_entry e = sched->run[sched->head];

    sched->head = (sched->head + 1) % sched->cap;
    sched->nrun--;
    if (e.c->x.id != e.id)
        return NULL; /* closed after it was queued, and the block reused */
    e.c->queued = false;
    return e.c->x.fd >= 0 ? e.c : NULL;
}

static int conn_run(sl_conn *c);

/* Resumes the coroutines queued before this call, once each (those they
 * wake or that yield wait for the next turn, after a poll). */
static void sl_run_queue(void)
{
    for (size_t n = sched->nrun; n > 0; n--) {
        sl_conn *c = sl_pop();

        if (!c)
            continue;
        c->budget = SL_READS_PER_RESUME;
        switch (conn_run(c)) {
        case SP_SL_DONE:
            sp__evm_close(&c->x);
            break;
        case SP_SL_YIELDED:
            sl_wake(c);
            break;
        }
    }
}

/* ---- the connection's coroutine ------------------------------------------ */

/* The connection's deadline has passed (and nothing re-armed it since). */
static bool sl_expired(const sl_conn *c)
{
    return c->x.timer_for != SP__EVM_T_NONE && c->x.timer.deadline < 0;
}

/* Child: writes the output buffer.  c->r: 1 written, -1 lost. */
static int sl_flush(sl_conn *c)
{
    sp__evm_conn *x = &c->x;

    SP_SL_BEGIN(&c->sub);
    while ((c->r = x->wr_ready ? sp__evm_flush(x) : 0) == 0) {
        sp__evm_arm_io(x);
        SP_SL_AWAIT(&c->sub, x->wr_ready || sl_expired(c));
        if (sl_expired(c)) {
            c->r = -1; /* no progress for idle_timeout */
            SP_SL_EXIT(&c->sub);
        }
    }
    SP_SL_END(&c->sub);
}

/* Child: sends the static file after its head.  c->r as sl_flush.  A
 * large file yields between its shares, so the others are served too. */
static int sl_sendfile(sl_conn *c)
{
    sp__evm_conn *x = &c->x;

    SP_SL_BEGIN(&c->sub);
    while ((c->r = x->wr_ready ? sp__evm_sendfile(x) : 0) != 1 && c->r >= 0) {
        if (c->r == 2) {
            SP_SL_YIELD(&c->sub);
            continue;
        }
        sp__evm_arm_io(x);
        SP_SL_AWAIT(&c->sub, x->wr_ready || sl_expired(c));
        if (sl_expired(c)) {
            c->r = -1;
            SP_SL_EXIT(&c->sub);
        }
    }
    SP_SL_END(&c->sub);
}

/* Reads once the socket is ready; c->r: 1 to go on parsing, 0 when the
 * deadline passed, -1 when the connection is lost.  Not a child
 * coroutine: it does not wait, the caller awaits readiness first. */
static void sl_read(sl_conn *c)
{
    ssize_t n;

    if (sl_expired(c)) {
        c->r = 0;
        return;
    }
    n = sp__evm_read(&c->x);
    c->r = n >= 0 || errno == EAGAIN || errno == EINTR ? 1 : -1;
}

static bool sl_stop_now(const sl_conn *c)
{
    return sched->s.stopping && sp__evm_idle(&c->x);
}

static int conn_run(sl_conn *c)
{
    sp__evm_conn *x = &c->x;

    SP_SL_BEGIN(&c->co);
    for (;;) {
        /* ---- the head of the next request ---- */
        while ((c->r = sp__evm_head(x)) == SP__EVM_AGAIN) {
            if (x->out_len) { /* answers go out before we wait for input */
                SP_SL_AWAIT_CALL(&c->co, &c->sub, sl_flush(c));
                if (c->r < 0)
                    SP_SL_EXIT(&c->co);
                continue;
            }
            if (x->peer_eof || sl_stop_now(c))
                SP_SL_EXIT(&c->co);
            SP_SL_AWAIT(&c->co, x->rd_ready || sl_expired(c) || sl_stop_now(c));
            if (sl_stop_now(c))
                SP_SL_EXIT(&c->co);
            if (c->budget-- <= 0)
                SP_SL_YIELD(&c->co); /* more to read, but others come first */
            sl_read(c);
            if (c->r < 0)
                SP_SL_EXIT(&c->co); /* lost */
            if (c->r == 0) { /* the header or idle timer */
                if (!sp__evm_timeout_answer(x))
                    SP_SL_EXIT(&c->co); /* nothing came: no answer */
                c->r = SP__EVM_FAIL; /* 408: the head took too long */
                break;
            }
        }

        /* ---- its body ---- */
        while (c->r == SP__EVM_OK && (c->r = sp__evm_body(x)) == SP__EVM_AGAIN) {
            if (x->out_len) { /* a 100 Continue */
                SP_SL_AWAIT_CALL(&c->co, &c->sub, sl_flush(c));
                if (c->r < 0)
                    SP_SL_EXIT(&c->co);
                c->r = SP__EVM_OK;
                continue;
            }
            if (x->peer_eof)
                SP_SL_EXIT(&c->co);
            SP_SL_AWAIT(&c->co, x->rd_ready || sl_expired(c));
            sl_read(c);
            if (c->r <= 0)
                SP_SL_EXIT(&c->co); /* lost, or no body bytes in time */
            c->r = SP__EVM_OK;
        }

        /* ---- the answer ---- */
        if (c->r == SP__EVM_FAIL) {
            c->closing = true; /* an error page is queued */
        } else if (x->act->kind == SP_HTTP_ACT_RESPOND) {
            sp__evm_reply(x);
        } else if (x->act->kind == SP_HTTP_ACT_SLEEP) {
            sp__evm_arm(x, SP__EVM_T_SLEEP, (int64_t)x->act->sleep_ms * SP__EVM_MS);
            SP_SL_AWAIT(&c->co, sl_expired(c));
            sp__evm_reply(x);
        } else if (x->act->kind == SP_HTTP_ACT_STATIC) {
            if (sp__evm_static_job(x)) {
                c->job_done = false;
                sp__evm_submit(x);
                SP_SL_AWAIT(&c->co, c->job_done);
                sp__evm_static_opened(x);
            }
            if (x->file_fd >= 0) {
                SP_SL_AWAIT_CALL(&c->co, &c->sub, sl_flush(c));
                if (c->r < 0)
                    SP_SL_EXIT(&c->co);
                SP_SL_AWAIT_CALL(&c->co, &c->sub, sl_sendfile(c));
                if (c->r < 0)
                    SP_SL_EXIT(&c->co);
            }
        } else if (sp__evm_cgi_job(x)) {
            c->job_done = false;
            sp__evm_submit(x);
            SP_SL_AWAIT(&c->co, c->job_done);
            if (sp__evm_cgi_spawned(x)) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &c->pipe};

                if (epoll_ctl(sched->epfd, EPOLL_CTL_ADD, x->cgi->p.out_fd, &ev) < 0)
                    SP_SL_EXIT(&c->co);
                /* relay the script's output into the answer */
                while ((c->r = (int)sp__evm_cgi_pump(x)) != SP__EVM_CGI_DONE) {
                    if (c->r == SP__EVM_CGI_FLUSH) {
                        SP_SL_AWAIT_CALL(&c->co, &c->sub, sl_flush(c));
                        if (c->r < 0)
                            SP_SL_EXIT(&c->co);
                        continue;
                    }
                    if (sp__evm_cgi_read(x) >= 0)
                        continue;
                    c->pipe_ready = false;
                    SP_SL_AWAIT(&c->co, c->pipe_ready || sl_expired(c));
                    if (sl_expired(c) && !sp__evm_cgi_timeout(x))
                        SP_SL_EXIT(&c->co); /* cut mid-body; else 504 */
                }
            }
        }

        /* ---- on to the next request, or the close ---- */
        c->closing = c->closing || sp__evm_must_close(x);
        sp__evm_next(x);
        if (!c->closing && sp__evm_buffered(x) && !sp__evm_out_full(x))
            continue; /* pipelined: answer into the same buffer */
        SP_SL_AWAIT_CALL(&c->co, &c->sub, sl_flush(c));
        if (c->r < 0 || c->closing)
            break;
    }

    /* ---- the close: lingering when the peer may still be sending ---- */
    if (c->r > 0 && sp__evm_wants_linger(x)) {
        sp__evm_linger(x);
        SP_SL_AWAIT(&c->co, sl_expired(c) || sp__evm_drain(x));
    }
    SP_SL_END(&c->co);
}

/* ---- events ------------------------------------------------------------------ */

static void on_sock(sl_conn *c, uint32_t ev)
{
    sp__evm_conn *x = &c->x;

    if (ev & (EPOLLERR | EPOLLHUP)) {
        sp__evm_close(x); /* reset: the coroutine is simply forgotten */
        return;
    }
    if (ev & EPOLLIN)
        x->rd_ready = true;
    if (ev & EPOLLRDHUP)
        x->rdhup = x->rd_ready = true;
    if (ev & EPOLLOUT)
        x->wr_ready = true;
    sl_wake(c);
}

static void on_accept(void)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};

    for (;;) {
        sp__evm_conn *x = sp__evm_accept(&sched->s);
        sl_conn *c;

        if (!x) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE) {
                epoll_ctl(sched->epfd, EPOLL_CTL_DEL, sched->s.listen_fd, NULL);
                sp__evm_accept_pause(&sched->s);
            }
            return;
        }
        c = (sl_conn *)(void *)x;
        c->sock.kind = K_SOCK;
        c->pipe.kind = K_PIPE;
        SP_SL_INIT(&c->co);
        ev.data.ptr = &c->sock;
        if (epoll_ctl(sched->epfd, EPOLL_CTL_ADD, x->fd, &ev) < 0) {
            sp__evm_close(x);
            continue;
        }
        x->rd_ready = x->wr_ready = true; /* the request may be there */
        sl_wake(c);
    }
}

static void on_stop(void)
{
    epoll_ctl(sched->epfd, EPOLL_CTL_DEL, sched->s.listen_fd, NULL);
    sp__evm_stop_listening(&sched->s);
    /* each coroutine checks whether it is idle; those that are end */
    for (sp__evm_conn *x = sched->s.live; x; x = x->next)
        sl_wake((sl_conn *)(void *)x);
}

static void on_event(struct epoll_event *e)
{
    sl_tag *t = e->data.ptr;
    sl_conn *c;

    switch (t->kind) {
    case K_LISTEN:
        if (sched->s.listen_fd >= 0 && !sched->s.accept_paused)
            on_accept();
        return;
    case K_STOP:
        if (sp__evm_stop_seen(&sched->s))
            on_stop();
        return;
    case K_POOL:
        for (sp__evm_job *j = sp__evm_pool_done(&sched->s), *next; j; j = next) {
            next = j->next;
            c = sp__container_of(j, sl_conn, x.job);
            c->job_done = true;
            sl_wake(c);
        }
        return;
    case K_SOCK:
        c = sp__container_of(t, sl_conn, sock);
        if (c->x.fd >= 0)
            on_sock(c, e->events);
        return;
    case K_PIPE:
        c = sp__container_of(t, sl_conn, pipe);
        if (c->x.fd >= 0 && c->x.cgi) {
            c->pipe_ready = true;
            sl_wake(c);
        }
        return;
    }
}

static int sl_tag_add(int fd, sl_tag *t, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = t};

    return epoll_ctl(sched->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int sl_serve(const sp_server_opts *o)
{
    static sl_sched S; /* one scheduler, off the stack: it is large */
    struct epoll_event evs[SP__EVM_EVENTS];
    sp__evm_server *s = &S.s;
    int rc = 1;

    memset(&S, 0, sizeof S);
    sched = &S;
    if (sp__evm_server_init(s, o, "stackless", sizeof(sl_conn)) < 0)
        return 1;
    S.listen.kind = K_LISTEN;
    S.stop.kind = K_STOP;
    S.pool.kind = K_POOL;
    S.epfd = s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (S.epfd < 0 || sl_tag_add(s->listen_fd, &S.listen, EPOLLIN) < 0 ||
        sl_tag_add(s->stop_fd, &S.stop, EPOLLIN | EPOLLET) < 0 ||
        sl_tag_add(s->pool.efd, &S.pool, EPOLLIN) < 0) {
        fprintf(stderr, "spindle serve: epoll: %s\n", strerror(errno));
        goto out;
    }
    sp__evm_ready(s);
    if (sp__evm_stop_seen(s)) /* asked before we watched the descriptor */
        on_stop();
    while (!s->stopping || s->nlive > 0) {
        sp__evm_timer *t;
        int n = epoll_wait(S.epfd, evs, SP__EVM_EVENTS,
                           S.nrun ? 0 : sp__evm_wait_ms(s));

        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "spindle serve: epoll_wait: %s\n", strerror(errno));
            goto out;
        }
        sp__evm_tick(s);
        for (int i = 0; i < n; i++)
            on_event(&evs[i]);
        while ((t = sp__evm_timer_expired(&s->timers, s->now))) {
            /* sl_expired() now says so to the coroutine */
            sl_wake((sl_conn *)(void *)sp__container_of(t, sp__evm_conn, timer));
        }
        sl_run_queue();
        if (sp__evm_accept_due(s))
            sl_tag_add(s->listen_fd, &S.listen, EPOLLIN);
        sp__evm_free_dead(s);
    }
    rc = 0;
out:
    if (S.epfd >= 0)
        close(S.epfd);
    sp__evm_server_fini(s);
    free(S.run);
    sched = NULL;
    return rc;
}

const sp_model sp_model_stackless = {
    .name = "stackless",
    .summary = "one thread, epoll, a stackless coroutine (Duff's device) per "
               "connection",
    .serve = sl_serve,
};
