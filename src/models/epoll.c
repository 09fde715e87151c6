/* The epoll model: one thread, non-blocking sockets, raw epoll, and each
 * connection an explicit state machine.
 *
 *   HEAD -> BODY -> (RESPOND)                   -> WRITING -> HEAD ...
 *                -> SLEEPING  --timer-->   answer -> WRITING
 *                -> OPENING   --helper-->  head   -> WRITING -> SENDFILE
 *                -> SPAWNING  --helper-->  CGI (relay output) -> WRITING
 *   any error answer -> WRITING -> LINGER (or close)
 *
 * ep_run() advances a connection as far as it can go without waiting, and
 * leaves it in the state that says what it waits for.  Pipelined requests
 * are answered in order into one output buffer and flushed with one write
 * (a batch ends when the input holds no complete request or the buffer is
 * nearly full).
 *
 * --trigger level: the socket's interest set follows the state (EPOLLIN while
 * reading, EPOLLOUT while a write is blocked, nothing while the connection
 * sleeps, waits for a helper or relays CGI output), changed with
 * EPOLL_CTL_MOD only when it differs.  --trigger edge (the default): each
 * descriptor is registered once with EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET and
 * read or written until EAGAIN; rd_ready/wr_ready remember the last edge. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common.h"
#include "models/evm.h"

typedef enum ep_state {
    EP_HEAD,     /* reading a request head (or idle between requests) */
    EP_BODY,     /* reading its body */
    EP_SLEEPING, /* /sleep: the timer will answer */
    EP_OPENING,  /* a helper thread opens the static file */
    EP_SPAWNING, /* a helper thread spawns the CGI script */
    EP_CGI,      /* relaying the script's output */
    EP_WRITING,  /* flushing queued answers; then `after` */
    EP_SENDFILE, /* sending the static file after its head */
    EP_LINGER,   /* our side is shut; draining input until EOF or timer */
} ep_state;

/* What an epoll_event's data.ptr points to: the tag says which. */
typedef enum ep_kind { IO_LISTEN, IO_STOP, IO_POOL, IO_SOCK, IO_CGI_OUT } ep_kind;

typedef struct ep_io {
    ep_kind kind;
    uint32_t interest; /* level-triggered: what is registered now */
} ep_io;

typedef struct ep_conn {
    sp__evm_conn x; /* first: the block starts with it */
    ep_state state;
    int budget;       /* reads left in this ep_run (see EP_READS_PER_RUN) */
    struct ep_conn **again_list; /* &L->again or &L->again_now; NULL: none */
    struct ep_conn *again_next;
    ep_state after;   /* WRITING goes here once flushed (HEAD or SENDFILE) */
    bool closing;     /* WRITING ends the connection */
    ep_io sock, cgi_out;
} ep_conn;

typedef struct ep_loop {
    sp__evm_server s;
    int epfd;
    bool edge;
    ep_io listen, stop, pool;
    /* Connections that spent their read budget with input still waiting:
     * continued next turn, after a poll, so that a client that keeps its
     * pipeline full cannot starve the others.  (Edge-triggered, nothing
     * would wake them: they stopped before EAGAIN.)  `again` collects this
     * turn's, `again_now` holds the last turn's, run after this turn's
     * events; ep_run leaves a listed connection alone until then. */
    ep_conn *again, *again_now;
} ep_loop;

/* 16 reads (up to 16 x 24 KiB of requests) per connection, then the others. */
#define EP_READS_PER_RUN 16

#define EP_SOCK_EDGE (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define EP_READ (EPOLLIN | EPOLLRDHUP)

static ep_conn *conn_of(ep_io *io)
{
    return io->kind == IO_SOCK ? sp__container_of(io, ep_conn, sock)
                               : sp__container_of(io, ep_conn, cgi_out);
}

static int ep_add(ep_loop *L, int fd, ep_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};

    io->interest = events;
    return epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Level-triggered only: makes `want` the interest set of fd.  Edge mode
 * registered everything once and changes nothing. */
static void ep_want(ep_loop *L, int fd, ep_io *io, uint32_t want)
{
    struct epoll_event ev = {.events = want, .data.ptr = io};

    if (L->edge || fd < 0 || io->interest == want)
        return;
    io->interest = want;
    epoll_ctl(L->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void ep_close(ep_loop *L, ep_conn *c)
{
    if (c->again_list) { /* its block may be reused before the list runs */
        ep_conn **p = c->again_list;

        while (*p != c)
            p = &(*p)->again_next;
        *p = c->again_next;
        c->again_list = NULL;
    }
    sp__evm_close(&c->x);
}

/* Continues c next turn, after a poll (see ep_loop.again). */
static void ep_again(ep_loop *L, ep_conn *c)
{
    c->again_list = &L->again;
    c->again_next = L->again;
    L->again = c;
}

/* The answer is queued in full: on to the next request (pipelined ones
 * without a flush while the buffer has room), or to the close. */
static void ep_answered(ep_conn *c)
{
    sp__evm_conn *x = &c->x;

    c->closing = sp__evm_must_close(x);
    sp__evm_next(x);
    c->after = EP_HEAD;
    c->state = (!c->closing && sp__evm_buffered(x) && !sp__evm_out_full(x))
                   ? EP_HEAD
                   : EP_WRITING;
}

/* Starts the action the router chose for a request whose body is in. */
static void ep_dispatch(ep_conn *c)
{
    sp__evm_conn *x = &c->x;

    switch (x->act->kind) {
    case SP_HTTP_ACT_RESPOND:
        sp__evm_reply(x);
        ep_answered(c);
        return;
    case SP_HTTP_ACT_SLEEP:
        c->state = EP_SLEEPING;
        sp__evm_arm(x, SP__EVM_T_SLEEP, (int64_t)x->act->sleep_ms * SP__EVM_MS);
        return;
    case SP_HTTP_ACT_STATIC:
        if (!sp__evm_static_job(x)) {
            ep_answered(c);
            return;
        }
        c->state = EP_OPENING;
        break;
    case SP_HTTP_ACT_CGI:
        if (!sp__evm_cgi_job(x)) {
            ep_answered(c);
            return;
        }
        c->state = EP_SPAWNING;
        break;
    }
    sp__evm_submit(x);
}

/* Reads into the input buffer for HEAD and BODY.  Returns true to go on
 * parsing, false when the connection waits (or was closed). */
static bool ep_fill(ep_loop *L, ep_conn *c)
{
    sp__evm_conn *x = &c->x;

    if (x->out_len) {
        /* answers (or a 100 Continue) go out before we wait for input */
        c->after = c->state;
        c->state = EP_WRITING;
        return true;
    }
    if (x->peer_eof) {
        ep_close(L, c); /* EOF inside a request, or between requests */
        return false;
    }
    if (x->rd_ready && c->budget-- <= 0) {
        ep_again(L, c); /* more to read, but others come first */
        return false;
    }
    if (x->rd_ready) {
        ssize_t n = sp__evm_read(x);

        if (n >= 0 || errno == EINTR)
            return true; /* bytes, or EOF: parse again, then decide */
        if (errno != EAGAIN) {
            ep_close(L, c);
            return false;
        }
    }
    ep_want(L, x->fd, &c->sock, EP_READ);
    return false;
}

static bool ep_head(ep_loop *L, ep_conn *c)
{
    sp__evm_conn *x = &c->x;

    switch (sp__evm_head(x)) {
    case SP__EVM_OK:
        c->state = EP_BODY;
        return true;
    case SP__EVM_FAIL:
        c->closing = true;
        c->state = EP_WRITING;
        return true;
    }
    if (L->s.stopping && sp__evm_idle(x)) {
        /* between requests when the stop came: nothing to finish */
        ep_close(L, c);
        return false;
    }
    return ep_fill(L, c);
}

static bool ep_body(ep_loop *L, ep_conn *c)
{
    sp__evm_conn *x = &c->x;

    switch (sp__evm_body(x)) {
    case SP__EVM_OK:
        ep_dispatch(c);
        return true;
    case SP__EVM_FAIL:
        c->closing = true;
        c->state = EP_WRITING;
        return true;
    }
    return ep_fill(L, c);
}

static bool ep_writing(ep_loop *L, ep_conn *c)
{
    sp__evm_conn *x = &c->x;
    int r = x->wr_ready ? sp__evm_flush(x) : 0;

    if (r < 0) {
        ep_close(L, c);
        return false;
    }
    if (r == 0) {
        sp__evm_arm_io(x);
        ep_want(L, x->fd, &c->sock, EPOLLOUT);
        return false;
    }
    if (!c->closing) {
        c->state = c->after;
        return true;
    }
    if (!sp__evm_wants_linger(x)) {
        ep_close(L, c);
        return false;
    }
    sp__evm_linger(x);
    c->state = EP_LINGER;
    return true;
}

static bool ep_sendfile(ep_loop *L, ep_conn *c)
{
    sp__evm_conn *x = &c->x;
    int r = x->wr_ready ? sp__evm_sendfile(x) : 0;

    if (r < 0) {
        ep_close(L, c);
        return false;
    }
    if (r == 2) {
        ep_again(L, c); /* a large file: the others first */
        return false;
    }
    if (r == 0) {
        sp__evm_arm_io(x);
        ep_want(L, x->fd, &c->sock, EPOLLOUT);
        return false;
    }
    ep_answered(c);
    return true;
}

/* Relays the CGI script's output through the pump into the answer, until
 * the pump says DONE (its stdin was filled before it started). */
static bool ep_cgi(ep_loop *L, ep_conn *c)
{
    sp__evm_conn *x = &c->x;
    sp__evm_cgi *g = x->cgi;

    for (;;) {
        switch (sp__evm_cgi_pump(x)) {
        case SP__EVM_CGI_DONE:
            ep_answered(c);
            return true;
        case SP__EVM_CGI_FLUSH: {
            int r = x->wr_ready ? sp__evm_flush(x) : 0;

            if (r < 0) {
                ep_close(L, c);
                return false;
            }
            if (r == 0) {
                /* the client is slow: stop reading the script meanwhile */
                ep_want(L, g->p.out_fd, &c->cgi_out, 0);
                ep_want(L, x->fd, &c->sock, EPOLLOUT);
                return false;
            }
            ep_want(L, x->fd, &c->sock, 0);
            continue;
        }
        case SP__EVM_CGI_READ:
            if (sp__evm_cgi_read(x) >= 0)
                continue;
            ep_want(L, g->p.out_fd, &c->cgi_out, EPOLLIN);
            return false;
        }
    }
}

static bool ep_linger(ep_loop *L, ep_conn *c)
{
    if (sp__evm_drain(&c->x)) {
        ep_close(L, c);
        return false;
    }
    ep_want(L, c->x.fd, &c->sock, EP_READ);
    return false;
}

/* Advances c until it must wait. */
static void ep_run(ep_loop *L, ep_conn *c)
{
    bool go = true;

    if (c->again_list)
        return; /* it runs from its list, after this turn's events */
    c->budget = EP_READS_PER_RUN;

    while (go && c->x.fd >= 0) {
        switch (c->state) {
        case EP_HEAD: go = ep_head(L, c); break;
        case EP_BODY: go = ep_body(L, c); break;
        case EP_WRITING: go = ep_writing(L, c); break;
        case EP_SENDFILE: go = ep_sendfile(L, c); break;
        case EP_CGI: go = ep_cgi(L, c); break;
        case EP_LINGER: go = ep_linger(L, c); break;
        case EP_SLEEPING:
        case EP_OPENING:
        case EP_SPAWNING:
            ep_want(L, c->x.fd, &c->sock, 0);
            go = false; /* the timer or the helper moves these on */
            break;
        }
    }
}

/* ---- events ------------------------------------------------------------------ */

static void ep_timeout(ep_loop *L, ep_conn *c)
{
    sp__evm_conn *x = &c->x;

    switch (x->timer_for) {
    case SP__EVM_T_SLEEP:
        sp__evm_reply(x);
        ep_answered(c);
        break;
    case SP__EVM_T_HEADER:
        if (!sp__evm_timeout_answer(x)) { /* 408, then close */
            ep_close(L, c); /* nothing came at all: no answer */
            return;
        }
        c->closing = true;
        c->state = EP_WRITING;
        break;
    case SP__EVM_T_CGI:
        if (!sp__evm_cgi_timeout(x)) {
            ep_close(L, c);
            return;
        }
        break; /* 504 queued; the CGI state finds the pump DONE */
    default: /* IDLE, IO, LINGER */
        ep_close(L, c);
        return;
    }
    ep_run(L, c);
}

static void ep_jobs(ep_loop *L)
{
    sp__evm_job *j, *next;

    for (j = sp__evm_pool_done(&L->s); j; j = next) {
        ep_conn *c = sp__container_of(j, ep_conn, x.job);
        sp__evm_conn *x = &c->x;

        next = j->next; /* ep_run may queue the next request's job */
        if (c->state == EP_OPENING) {
            sp__evm_static_opened(x);
            if (x->file_fd >= 0) {
                c->closing = false;
                c->after = EP_SENDFILE;
                c->state = EP_WRITING;
            } else {
                ep_answered(c);
            }
        } else if (sp__evm_cgi_spawned(x)) {
            c->cgi_out.kind = IO_CGI_OUT;
            c->state = EP_CGI;
            if (ep_add(L, x->cgi->p.out_fd, &c->cgi_out,
                       L->edge ? EPOLLIN | EPOLLET : EPOLLIN) < 0) {
                ep_close(L, c);
                continue;
            }
        } else {
            ep_answered(c);
        }
        ep_run(L, c);
    }
}

static void ep_accept(ep_loop *L)
{
    for (;;) {
        sp__evm_conn *x = sp__evm_accept(&L->s);
        ep_conn *c;

        if (!x) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE) {
                epoll_ctl(L->epfd, EPOLL_CTL_DEL, L->s.listen_fd, NULL);
                sp__evm_accept_pause(&L->s);
            }
            return;
        }
        c = (ep_conn *)(void *)x;
        c->sock.kind = IO_SOCK;
        if (ep_add(L, x->fd, &c->sock, L->edge ? EP_SOCK_EDGE : EP_READ) < 0) {
            ep_close(L, c);
            continue;
        }
        /* the request often arrives with the connection: try at once */
        x->rd_ready = x->wr_ready = true;
        ep_run(L, c);
    }
}

static void ep_stop(ep_loop *L)
{
    sp__evm_conn *x, *next;

    epoll_ctl(L->epfd, EPOLL_CTL_DEL, L->s.listen_fd, NULL);
    sp__evm_stop_listening(&L->s);
    for (x = L->s.live; x; x = next) {
        ep_conn *c = (ep_conn *)(void *)x;

        next = x->next;
        if (c->state == EP_HEAD && sp__evm_idle(x))
            ep_close(L, c);
    }
}

static void ep_event(ep_loop *L, ep_io *io, uint32_t ev)
{
    ep_conn *c = conn_of(io);
    sp__evm_conn *x = &c->x;

    if (x->fd < 0)
        return; /* closed earlier in this batch */
    if (io->kind == IO_SOCK) {
        if (ev & (EPOLLERR | EPOLLHUP)) {
            /* reset, or both sides shut: nothing more can be delivered */
            ep_close(L, c);
            return;
        }
        if (ev & EPOLLIN)
            x->rd_ready = true;
        if (ev & EPOLLRDHUP)
            x->rdhup = x->rd_ready = true;
        if (ev & EPOLLOUT)
            x->wr_ready = true;
    } else if (c->state != EP_CGI || !x->cgi) {
        return; /* a pipe of a CGI that is already over */
    }
    ep_run(L, c);
}

static void ep_turn(ep_loop *L, struct epoll_event *evs, int n)
{
    sp__evm_server *s = &L->s;
    sp__evm_timer *t;

    L->again_now = L->again;
    L->again = NULL;
    for (ep_conn *c = L->again_now; c; c = c->again_next)
        c->again_list = &L->again_now;

    for (int i = 0; i < n; i++) {
        ep_io *io = evs[i].data.ptr;

        switch (io->kind) {
        case IO_LISTEN:
            if (s->listen_fd >= 0 && !s->accept_paused)
                ep_accept(L);
            break;
        case IO_STOP:
            if (sp__evm_stop_seen(s))
                ep_stop(L);
            break;
        case IO_POOL:
            ep_jobs(L);
            break;
        default:
            ep_event(L, io, evs[i].events);
        }
    }
    while ((t = sp__evm_timer_expired(&s->timers, s->now)))
        ep_timeout(L, (ep_conn *)(void *)sp__container_of(t, sp__evm_conn, timer));
    while (L->again_now) {
        ep_conn *c = L->again_now;

        L->again_now = c->again_next;
        c->again_list = NULL;
        ep_run(L, c);
    }
    if (sp__evm_accept_due(s))
        ep_add(L, s->listen_fd, &L->listen, EPOLLIN);
    sp__evm_free_dead(s);
}

static int ep_serve(const sp_server_opts *o)
{
    static ep_loop L; /* one loop, off the stack: it is large */
    struct epoll_event evs[SP__EVM_EVENTS];
    sp__evm_server *s = &L.s;
    int rc = 1;

    memset(&L, 0, sizeof L);
    if (sp__evm_server_init(s, o, "epoll", sizeof(ep_conn)) < 0)
        return 1;
    L.edge = !o->trigger_level;
    L.listen.kind = IO_LISTEN;
    L.stop.kind = IO_STOP;
    L.pool.kind = IO_POOL;
    L.epfd = s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (L.epfd < 0 || ep_add(&L, s->listen_fd, &L.listen, EPOLLIN) < 0 ||
        /* edge-triggered whatever the mode: it is never read (server.h) */
        ep_add(&L, s->stop_fd, &L.stop, EPOLLIN | EPOLLET) < 0 ||
        ep_add(&L, s->pool.efd, &L.pool, EPOLLIN) < 0) {
        fprintf(stderr, "spindle serve: epoll: %s\n", strerror(errno));
        goto out;
    }
    sp__evm_ready(s);
    if (sp__evm_stop_seen(s)) /* asked before we watched the descriptor */
        ep_stop(&L);
    while (!s->stopping || s->nlive > 0) {
        int n = epoll_wait(L.epfd, evs, SP__EVM_EVENTS,
                           L.again ? 0 : sp__evm_wait_ms(s));

        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "spindle serve: epoll_wait: %s\n", strerror(errno));
            goto out;
        }
        sp__evm_tick(s);
        ep_turn(&L, evs, n > 0 ? n : 0);
    }
    rc = 0;
out:
    if (L.epfd >= 0)
        close(L.epfd);
    sp__evm_server_fini(s);
    return rc;
}

const sp_model sp_model_epoll = {
    .name = "epoll",
    .summary = "one thread, raw epoll (--trigger edge|level), a state machine "
               "per connection",
    .serve = ep_serve,
};
