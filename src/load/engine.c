/* The load generator engine (spindle/load.h).
 *
 * One coroutine per connection, written as the blocking loop a person would
 * write: connect, send the request, read until the response ends, record,
 * repeat.  Each engine thread runs its own scheduler over its share of the
 * connections and keeps its own counters and histogram, so nothing is shared
 * while the load runs but the source-address count (an atomic); the results
 * are merged once every thread has finished.
 *
 * Cost per request, keep-alive: one send, one or two reads, a share of an
 * epoll_wait, no allocation.  The request is built once; each connection
 * reads into its own buffer, and the parser consumes bodies in place.
 * A connection per request adds socket, one setsockopt, connect and close,
 * and the poller's registration and removal when the response is not there
 * at the first read; it never waits for the handshake (conn_open). */
#define _GNU_SOURCE
#include <spindle.h>
#include <spindle/load.h>

#include "load/resp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection's read buffer: the largest head the parser accepts, so a
 * head that does not fit is a head that is refused anyway. */
#define CONN_BUF SP__RESP_HEAD_MAX
/* After a failed connect, a connection waits this long before the next try:
 * a refused port would otherwise be a busy loop that only counts errors and
 * takes the CPU from everything else. */
#define CONNECT_BACKOFF_NS 1000000
/* Descriptors kept back from the connections: stdio, the poller, the
 * offload pool's pipe, the sweep's server pipe. */
#define FD_SPARE 32
/* The longest request head we build: method, path, Host, -H lines. */
#define REQ_MAX 8192
/* Keep-alive connections per source address before spreading to the next:
 * below the ephemeral port range, which TIME_WAIT sockets of earlier runs
 * also draw from. */
#define PORTS_USABLE_PERCENT 80
#define NS_PER_S 1000000000LL

typedef struct engine engine;
typedef struct lthread lthread;

typedef struct lconn {
    lthread *t;
    int index;        /* 0 .. conns-1 over all threads: its open-loop slots */
    int fd;           /* -1: not connected */
    unsigned src_turn;/* rotates the source address of its connects */
    int fresh;        /* connected, but no byte of it sent yet: a failed
                       * send is the connect's failure */
    size_t have;      /* bytes in buf not yet consumed */
    char buf[CONN_BUF];
} lconn;

struct lthread {
    engine *e;
    int index;
    int first, n;        /* its connections: [first, first + n) */
    lconn *conns;
    uint64_t quota;      /* closed loop with -n: its share of the requests */
    uint64_t claimed;
    int64_t last_end;    /* when its last counted request ended */
    int live;            /* connection coroutines still running */
    int started;         /* connection coroutines that could be spawned */
    int spawn_errno;
    sp_load_result res;
    int rc;              /* sp_run's result */
};

struct engine {
    const sp_load_opts *o;
    sp_load_target tgt;
    struct sockaddr_storage to;
    socklen_t tolen;
    char req[REQ_MAX];
    size_t reqlen;
    int head_only;
    int conns;
    int64_t t0;           /* the run starts (warm-up included) */
    int64_t measure_from; /* the counted part starts */
    int64_t t_end;        /* nothing runs past this */
    int64_t timeout_ns;
    double slot_ns;       /* open loop: the interval between requests */
    uint64_t slot_first;  /* open loop: the first counted slot */
    uint64_t slot_stop;   /* open loop with -n: the slot after the last */
    int src_ok;           /* IPv4 loopback: other 127/8 sources can be bound */
    _Atomic int nsrc;     /* source addresses in use; 1: the kernel picks */
    _Atomic int src_exhausted;
};

static const char *const err_names[SP_LOAD_ERR_N] = {"connect", "read", "write", "timeout",
                                                      "status"};

const char *sp_load_err_name(int kind)
{
    return kind >= 0 && kind < SP_LOAD_ERR_N ? err_names[kind] : "?";
}

uint64_t sp_load_errors(const sp_load_result *r)
{
    uint64_t n = 0;
    for (int i = 0; i < SP_LOAD_ERR_N; i++)
        n += r->errors[i];
    return n;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- one request ---------------------------------------------------------- */

static void count_error(lthread *t, int kind, int err)
{
    t->res.errors[kind]++;
    if (!t->res.first_errno[kind])
        t->res.first_errno[kind] = err ? err : EIO;
}

static void conn_drop(lconn *c)
{
    if (c->fd >= 0)
        sp_close(c->fd);
    c->fd = -1;
    c->have = 0;
}

/* Binds fd to the next of the engine's source addresses (127.0.0.1 + i).
 * IP_BIND_ADDRESS_NO_PORT leaves the port to connect(), which picks it
 * knowing the destination, so every source address gets the whole port
 * range for each destination instead of bind's one-port-one-socket rule. */
static int bind_source(lconn *c, int fd, int nsrc)
{
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (c->src_turn++ % (unsigned)nsrc));
    return bind(fd, (struct sockaddr *)&sa, sizeof sa);
}

/* Starts c's connection: socket, source address, connect.  Returns 0 with
 * c->fd set and the handshake done or under way, or the errno that stopped
 * it.  It does not wait for the handshake: on loopback the whole of it runs
 * inside connect() (the SYN, the server's SYN-ACK and our answer are all
 * processed in the softirq that the SYN's send raises), so connect says
 * EINPROGRESS of a connection that is already up, and waiting for the
 * poller to say so would cost a registration, a park, a wake and a
 * getsockopt per connection.  one_request sends at once; a send on a
 * connection still in its handshake says EAGAIN and waits for it, and one
 * on a refused connection fails with the connect's error.  When the ports
 * of the source addresses in use run out (EADDRNOTAVAIL, said by connect
 * itself), doubles them and tries again, as long as there are addresses
 * left to take. */
static int conn_open(lconn *c)
{
    engine *e = c->t->e;
    for (;;) {
        int fd = sp_socket(e->to.ss_family, SOCK_STREAM, 0);
        if (fd < 0)
            return errno;
        /* Delayed-ACK ("ping-pong") mode for the handshake: the ACK of the
         * server's SYN-ACK waits to ride on the request, which is sent at
         * once, instead of going out alone (tcp_rcv_synsent_state_process;
         * the kernel leaves the mode when the handshake ends).  One
         * segment fewer per connection, processed on this CPU for both
         * ends; the server sees the same handshake, its last ACK carrying
         * data.  No effect on keep-alive beyond the first request. */
        int zero = 0;
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
        if (e->o->close_rst) {
            struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
        }
        int nsrc = atomic_load_explicit(&e->nsrc, memory_order_relaxed);
        int rc = nsrc > 1 ? bind_source(c, fd, nsrc) : 0;
        if (rc == 0 && connect(fd, (struct sockaddr *)&e->to, e->tolen) != 0 &&
            errno != EINPROGRESS && errno != EINTR)
            rc = -1;
        if (rc == 0) {
            c->fd = fd;
            c->have = 0;
            c->fresh = 1;
            return 0;
        }
        int err = errno;
        sp_close(fd);
        if (err != EADDRNOTAVAIL)
            return err;
        if (!e->src_ok || nsrc >= SP_LOAD_SRC_MAX) {
            atomic_store(&e->src_exhausted, 1);
            return err;
        }
        int more = nsrc * 2 > SP_LOAD_SRC_MAX ? SP_LOAD_SRC_MAX : nsrc * 2;
        atomic_compare_exchange_strong(&e->nsrc, &nsrc, more);
    }
}

/* How a failed wait is counted: a deadline that is the run's end rather
 * than the request's own is a cut, not a timeout.  Cut requests are counted
 * even when they started in the warm-up: a level where nothing finished
 * must show what was still waiting. */
static void count_io_failure(lconn *c, int kind, int err, int64_t io_deadline,
                             int64_t req_deadline, int counted)
{
    lthread *t = c->t;
    if (err == ETIMEDOUT && io_deadline < req_deadline)
        t->res.unfinished++;
    else if (counted)
        count_error(t, err == ETIMEDOUT ? SP_LOAD_ERR_TIMEOUT : kind, err);
}

/* Reads until the response ends.  Returns 0 with *resp done, or the errno
 * of the failure with *kind set (EPROTO: malformed, EPIPE: closed early). */
static int read_response(lconn *c, sp__resp *resp, int64_t deadline, int counted, int *kind)
{
    engine *e = c->t->e;
    sp__resp_init(resp, e->head_only);
    *kind = SP_LOAD_ERR_READ;
    int short_read = 0;
    for (;;) {
        if (c->have) {
            ssize_t n = sp__resp_feed(resp, c->buf, c->have);
            if (n < 0)
                return EPROTO;
            if (n > 0) {
                c->have -= (size_t)n;
                if (c->have) /* the rest of a head, or bytes past the end */
                    memmove(c->buf, c->buf + n, c->have);
            }
            if (resp->done)
                return 0;
        }
        size_t room = CONN_BUF - c->have;
        ssize_t got = -1;
        if (short_read) {
            /* The runtime takes a short read as "drained" and parks the next
             * read until the poller reports a new edge; but when the server's
             * FIN came in the same edge as the data (a response followed by
             * a close), no edge is left to come and the read would wait for
             * its deadline.  One non-blocking recv settles it: 0 is the
             * close, EAGAIN means anything further will raise an edge. */
            got = sp_recv(c->fd, c->buf + c->have, room, MSG_DONTWAIT, deadline);
        }
        if (got < 0 && (!short_read || errno == EAGAIN || errno == EWOULDBLOCK))
            got = sp_read(c->fd, c->buf + c->have, room, deadline);
        short_read = got > 0 && (size_t)got < room;
        if (got > 0) {
            c->have += (size_t)got;
            if (counted)
                c->t->res.bytes += (uint64_t)got;
        } else if (got == 0) {
            return sp__resp_eof(resp) ? 0 : EPIPE;
        } else if (errno != EINTR) {
            return errno;
        }
    }
}

/* Counts a connection that could not be made, and waits a little before
 * the next try unless it timed out: a refused port would otherwise be a
 * busy loop that only counts errors. */
static void connect_failed(lconn *c, int err, int64_t io_deadline, int64_t req_deadline,
                           int counted)
{
    engine *e = c->t->e;
    count_io_failure(c, SP_LOAD_ERR_CONNECT, err, io_deadline, req_deadline, counted);
    if (err != ETIMEDOUT) {
        int64_t until = sp_now() + CONNECT_BACKOFF_NS;
        sp_sleep_until(until < e->t_end ? until : e->t_end);
    }
    if (counted)
        c->t->last_end = sp_now();
}

/* One request from `due` (when it should start: now in a closed loop, its
 * slot in an open one, which is what latency is measured from); `start` is
 * the clock read just before the call, saving a read per request. */
static void one_request(lconn *c, int64_t due, int64_t start, int counted)
{
    lthread *t = c->t;
    engine *e = t->e;
    int64_t req_deadline = start + e->timeout_ns;
    int64_t io_deadline = req_deadline < e->t_end ? req_deadline : e->t_end;
    t->res.attempted += (uint64_t)counted;

    if (c->fd < 0) {
        int err = conn_open(c);
        if (err) {
            connect_failed(c, err, io_deadline, req_deadline, counted);
            return;
        }
    }
    /* One send of the whole request: it is small, so it nearly always
     * goes out in one piece; sp_send adds MSG_NOSIGNAL (no SIGPIPE). */
    size_t off = 0;
    while (off < e->reqlen) {
        ssize_t n = sp_send(c->fd, e->req + off, e->reqlen - off, 0, io_deadline);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            if (c->fresh) {
                /* The handshake failed (refused, reset) or timed out. */
                conn_drop(c);
                connect_failed(c, err, io_deadline, req_deadline, counted);
                return;
            }
            count_io_failure(c, SP_LOAD_ERR_WRITE, err, io_deadline, req_deadline, counted);
            conn_drop(c);
            if (counted)
                t->last_end = sp_now();
            return;
        }
        c->fresh = 0;
        off += (size_t)n;
    }
    sp__resp resp;
    int kind;
    int err = read_response(c, &resp, io_deadline, counted, &kind);
    int64_t end = sp_now();
    if (err) {
        count_io_failure(c, kind, err, io_deadline, req_deadline, counted);
        conn_drop(c);
    } else {
        if (counted) {
            sp_hist_record(&t->res.hist, (uint64_t)(end - due));
            t->res.requests++;
            int cls = resp.status / 100;
            t->res.status[cls >= 1 && cls <= 5 ? cls : 0]++;
            if (cls != 2)
                count_error(t, SP_LOAD_ERR_STATUS, 0);
        }
        if (!e->o->keepalive || resp.close)
            conn_drop(c);
    }
    if (counted)
        t->last_end = end;
}

/* ---- the connection loop -------------------------------------------------- */

/* Open loop: slot s is due at t0 + s * slot_ns; connection i takes slots
 * i, i + conns, i + 2 * conns, ...  A connection that falls behind sends at
 * once, and its latency still runs from the slot: the time the request
 * spent waiting for its turn is the latency a real client would have seen
 * (coordinated omission, corrected as wrk2 does). */
static void open_loop(lconn *c)
{
    engine *e = c->t->e;
    for (uint64_t s = (uint64_t)c->index;; s += (uint64_t)e->conns) {
        if (e->slot_stop && s >= e->slot_stop)
            break;
        int64_t due = e->t0 + (int64_t)((double)s * e->slot_ns);
        if (due >= e->t_end)
            break;
        int64_t now = sp_now();
        if (due > now) {
            if (sp_sleep_until(due) != 0)
                break;
            now = sp_now();
        }
        one_request(c, due, now, s >= e->slot_first);
    }
}

/* Closed loop: the next request as soon as the last one ended. */
static void closed_loop(lconn *c)
{
    lthread *t = c->t;
    engine *e = t->e;
    for (;;) {
        int64_t now = sp_now();
        if (now >= e->t_end)
            break;
        int counted = now >= e->measure_from;
        if (counted && e->o->requests) {
            if (t->claimed >= t->quota)
                break;
            t->claimed++;
        }
        one_request(c, now, now, counted);
    }
}

static void *conn_main(void *arg)
{
    lconn *c = arg;
    if (c->t->e->slot_ns > 0)
        open_loop(c);
    else
        closed_loop(c);
    conn_drop(c);
    c->t->live--;
    return NULL;
}

/* ---- threads ---------------------------------------------------------------- */

/* Tells the caller how far the run is, about once a second, until it is
 * cancelled by the thread that spawned it. */
static void *progress_main(void *arg)
{
    lthread *t = arg;
    engine *e = t->e;
    for (int64_t next = e->t0 + NS_PER_S;; next += NS_PER_S) {
        if (sp_sleep_until(next) != 0)
            return NULL;
        e->o->progress(e->o->progress_arg, (double)(sp_now() - e->t0) / 1e9);
    }
}

static void *thread_main(void *arg)
{
    lthread *t = arg;
    engine *e = t->e;
    sp_co **cos = calloc((size_t)t->n, sizeof *cos);
    if (!cos) {
        t->spawn_errno = ENOMEM;
        return NULL;
    }
    for (int i = 0; i < t->n; i++) {
        lconn *c = &t->conns[i];
        c->t = t;
        c->index = t->first + i;
        c->fd = -1;
        c->src_turn = (unsigned)c->index;
        cos[i] = sp_spawn(conn_main, c, NULL);
        if (!cos[i]) {
            t->spawn_errno = errno;
            break;
        }
        t->started++;
        t->live++;
    }
    sp_co *prog = NULL;
    if (t->index == 0 && e->o->progress)
        prog = sp_spawn(progress_main, t, NULL);
    for (int i = 0; i < t->started; i++)
        sp_join(cos[i], NULL);
    if (prog) {
        sp_cancel(prog);
        sp_join(prog, NULL);
    }
    free(cos);
    return NULL;
}

/* Engine threads beyond the caller's come from a pool that lives as long as
 * the process and is reused by every run.  A thread's scheduler and poller
 * are not freed when the thread ends (src/core keeps them: handles to its
 * coroutines may outlive it), so a sweep that started fresh threads for
 * each of its runs would leave a scheduler and an epoll descriptor behind
 * per run and thread.  Runs are serialised by run_lock: the pool's workers
 * belong to one run at a time. */
typedef struct pool_worker {
    pthread_t tid;
    lthread *job;  /* set by the run, cleared by the worker when done */
} pool_worker;

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static pool_worker pool[SP_LOAD_THREADS_MAX - 1];
static int pool_n;

static void *pool_main(void *arg)
{
    pool_worker *w = arg;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        while (!w->job)
            pthread_cond_wait(&pool_cond, &pool_lock);
        lthread *t = w->job;
        pthread_mutex_unlock(&pool_lock);
        t->rc = sp_run(NULL, thread_main, t, NULL);
        pthread_mutex_lock(&pool_lock);
        w->job = NULL;
        pthread_cond_broadcast(&pool_cond);
    }
    return NULL;
}

/* Hands ts[1..nt) to pool workers, starting workers as needed.  Returns
 * how many were handed out (all, or fewer with *err set to the errno of
 * pthread_create). */
static int pool_start(lthread *ts, int nt, int *err)
{
    int given = 0;
    pthread_mutex_lock(&pool_lock);
    for (int i = 1; i < nt; i++) {
        pool_worker *w = &pool[i - 1];
        if (i > pool_n) {
            int rc = pthread_create(&w->tid, NULL, pool_main, w);
            if (rc) {
                *err = rc;
                break;
            }
            pool_n = i;
        }
        w->job = &ts[i];
        given++;
    }
    pthread_cond_broadcast(&pool_cond);
    pthread_mutex_unlock(&pool_lock);
    return given;
}

static void pool_wait(int given)
{
    pthread_mutex_lock(&pool_lock);
    for (int i = 0; i < given; i++)
        while (pool[i].job)
            pthread_cond_wait(&pool_cond, &pool_lock);
    pthread_mutex_unlock(&pool_lock);
}

/* ---- setup ------------------------------------------------------------------- */

static int is_token_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

/* Builds the request once: every connection sends the same bytes. */
static int build_request(engine *e, char *err, size_t errlen)
{
    const sp_load_opts *o = e->o;
    const char *method = o->method ? o->method : "GET";
    if (!*method)
        return fail(err, errlen, -EINVAL, "empty method");
    for (const char *p = method; *p; p++)
        if (!is_token_char((unsigned char)*p))
            return fail(err, errlen, -EINVAL, "method '%s' is not an HTTP token", method);
    e->head_only = strcmp(method, "HEAD") == 0;
    int host_given = 0;
    for (int i = 0; i < o->nheaders; i++) {
        const char *h = o->headers[i];
        const char *colon = strchr(h, ':');
        if (!colon || colon == h)
            return fail(err, errlen, -EINVAL, "header '%s' is not 'Name: value'", h);
        for (const char *p = h; p < colon; p++)
            if (!is_token_char((unsigned char)*p))
                return fail(err, errlen, -EINVAL, "header name in '%s' is not an HTTP token", h);
        if (strpbrk(h, "\r\n"))
            return fail(err, errlen, -EINVAL, "header '%s' holds a line break", h);
        if (colon - h == 4 && strncasecmp(h, "host", 4) == 0)
            host_given = 1;
    }
    size_t cap = sizeof e->req, n = 0;
    int w = snprintf(e->req, cap, "%s %s HTTP/1.1\r\n", method, e->tgt.path);
    if (w < 0 || (size_t)w >= cap)
        goto too_long;
    n = (size_t)w;
    if (!host_given) {
        w = snprintf(e->req + n, cap - n, "Host: %s\r\n", e->tgt.host);
        if (w < 0 || (size_t)w >= cap - n)
            goto too_long;
        n += (size_t)w;
    }
    for (int i = 0; i < o->nheaders; i++) {
        w = snprintf(e->req + n, cap - n, "%s\r\n", o->headers[i]);
        if (w < 0 || (size_t)w >= cap - n)
            goto too_long;
        n += (size_t)w;
    }
    w = snprintf(e->req + n, cap - n, "%s\r\n", o->keepalive ? "" : "Connection: close\r\n");
    if (w < 0 || (size_t)w >= cap - n)
        goto too_long;
    e->reqlen = n + (size_t)w;
    return 0;
too_long:
    return fail(err, errlen, -EINVAL, "the request head would exceed %d bytes", REQ_MAX);
}

/* The ephemeral port range, for deciding when one source address is not
 * enough; 28,232 (Linux's default range) if it cannot be read. */
static int local_ports(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2 || hi < lo)
            lo = 32768, hi = 60999;
        fclose(f);
    }
    return hi - lo + 1;
}

static int raise_nofile(long *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return -errno;
    }
    *limit = rl.rlim_cur > (rlim_t)1 << 30 ? 1L << 30 : (long)rl.rlim_cur;
    return 0;
}

static int check_opts(const sp_load_opts *o, char *err, size_t errlen)
{
    if (o->conns < 1)
        return fail(err, errlen, -EINVAL, "connections must be at least 1");
    if (o->threads < 0 || o->threads > o->conns || o->threads > SP_LOAD_THREADS_MAX)
        return fail(err, errlen, -EINVAL, "threads must be from 1 to the connections (%d) "
                    "and at most %d", o->conns, SP_LOAD_THREADS_MAX);
    if (o->duration_ns <= 0 && o->requests == 0)
        return fail(err, errlen, -EINVAL, "give a duration or a request count");
    if (o->duration_ns < 0 || o->warmup_ns < 0 || o->timeout_ns < 0 || o->limit_ns < 0)
        return fail(err, errlen, -EINVAL, "negative time");
    if (o->rate < 0 || isnan(o->rate) || isinf(o->rate))
        return fail(err, errlen, -EINVAL, "the rate must be a positive number");
    if (o->src_addrs < 0 || o->src_addrs > SP_LOAD_SRC_MAX)
        return fail(err, errlen, -EINVAL, "source addresses must be from 1 to %d",
                    SP_LOAD_SRC_MAX);
    if (o->rate > 0 && o->rate < 1e-3)
        return fail(err, errlen, -EINVAL, "a rate under one request in 1000 s is not a load");
    return 0;
}

/* Fills e from the options: target, request, schedule. */
static int engine_setup(engine *e, const sp_load_opts *o, long nofile, char *err,
                        size_t errlen)
{
    int rc = sp_load_target_parse(o->url, &e->tgt, err, errlen);
    if (rc < 0)
        return rc;
    if ((rc = build_request(e, err, errlen)) < 0)
        return rc;
    if ((long)o->conns + FD_SPARE > nofile)
        return fail(err, errlen, -EMFILE,
                    "cannot open %d connections: the descriptor limit is %ld (the hard "
                    "limit; %ld are kept for other uses); use at most %ld, or raise the hard "
                    "limit (ulimit -Hn, as root)",
                    o->conns, nofile, (long)FD_SPARE, nofile - FD_SPARE);
    memset(&e->to, 0, sizeof e->to);
    if (e->tgt.family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&e->to;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)e->tgt.port);
        memcpy(&a->sin_addr, e->tgt.addr, 4);
        e->tolen = sizeof *a;
        e->src_ok = 1;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&e->to;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)e->tgt.port);
        memcpy(&a->sin6_addr, e->tgt.addr, 16);
        e->tolen = sizeof *a;
    }
    e->conns = o->conns;
    e->timeout_ns = o->timeout_ns ? o->timeout_ns : SP_LOAD_TIMEOUT_DEFAULT_NS;
    /* Keep-alive connections beyond what one address's ports hold go to
     * more addresses from the start; a connection per request finds out
     * when connect says EADDRNOTAVAIL (conn_open). */
    int nsrc = 1;
    long per_src = (long)local_ports() * PORTS_USABLE_PERCENT / 100;
    if (o->keepalive && e->src_ok && o->conns > per_src) {
        nsrc = (int)((o->conns + per_src - 1) / per_src);
        if (nsrc > SP_LOAD_SRC_MAX)
            nsrc = SP_LOAD_SRC_MAX;
    }
    if (o->src_addrs > 1) {
        if (!e->src_ok)
            return fail(err, errlen, -EINVAL, "more source addresses need an IPv4 "
                        "loopback target ([::1] has only itself)");
        if (o->src_addrs > nsrc)
            nsrc = o->src_addrs;
    }
    atomic_store(&e->nsrc, nsrc);
    return 0;
}

/* The times of the run, from now. */
static void engine_schedule(engine *e)
{
    const sp_load_opts *o = e->o;
    e->t0 = sp_now();
    e->measure_from = e->t0 + o->warmup_ns;
    if (o->rate > 0) {
        e->slot_ns = 1e9 / o->rate;
        /* The counted part starts at a slot boundary, so a -n run counts
         * exactly n slots. */
        e->slot_first = (uint64_t)ceil((double)o->warmup_ns / e->slot_ns);
        e->measure_from = e->t0 + (int64_t)((double)e->slot_first * e->slot_ns);
        if (o->requests)
            e->slot_stop = e->slot_first + o->requests;
    }
    int64_t span = o->duration_ns;
    if (o->requests && !span)
        span = o->limit_ns ? o->limit_ns : SP_LOAD_LIMIT_DEFAULT_NS;
    e->t_end = e->measure_from + span;
}

static void merge_results(engine *e, lthread *ts, int nt, sp_load_result *r)
{
    int64_t last = e->measure_from;
    for (int i = 0; i < nt; i++) {
        sp_load_result *x = &ts[i].res;
        sp_hist_merge(&r->hist, &x->hist);
        r->requests += x->requests;
        r->bytes += x->bytes;
        r->unfinished += x->unfinished;
        r->attempted += x->attempted;
        for (int k = 0; k < 6; k++)
            r->status[k] += x->status[k];
        for (int k = 0; k < SP_LOAD_ERR_N; k++) {
            r->errors[k] += x->errors[k];
            if (!r->first_errno[k])
                r->first_errno[k] = x->first_errno[k];
        }
        r->conns += ts[i].started;
        if (ts[i].last_end > last)
            last = ts[i].last_end;
    }
    const sp_load_opts *o = e->o;
    int64_t span = e->t_end - e->measure_from;
    if (o->requests) {
        r->limit_hit = r->attempted < o->requests;
        if (!r->limit_hit)
            span = last - e->measure_from;
    }
    r->elapsed_s = (double)(span > 0 ? span : 1) / 1e9;
    r->src_addrs = atomic_load(&e->nsrc);
    r->src_exhausted = atomic_load(&e->src_exhausted);
}

int sp_load_run(const sp_load_opts *o, sp_load_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    sp_hist_init(&r->hist);
    if (err && errlen)
        err[0] = 0;
    int rc = check_opts(o, err, errlen);
    if (rc < 0)
        return rc;
    long nofile = 0;
    if ((rc = raise_nofile(&nofile)) < 0)
        return fail(err, errlen, rc, "cannot read the descriptor limit: %s", strerror(-rc));
    engine *e = calloc(1, sizeof *e);
    if (!e)
        return fail(err, errlen, -ENOMEM, "out of memory");
    e->o = o;
    int nt = o->threads > 0 ? o->threads : 1;
    lthread *ts = NULL;
    lconn *conns = NULL;
    if ((rc = engine_setup(e, o, nofile, err, errlen)) < 0)
        goto out_engine;
    ts = calloc((size_t)nt, sizeof *ts);
    /* One block for every connection's buffer: pages are touched (and so
     * committed) only as far as responses fill them. */
    conns = calloc((size_t)o->conns, sizeof *conns);
    if (!ts || !conns) {
        rc = fail(err, errlen, -ENOMEM, "out of memory for %d connections", o->conns);
        goto out_mem;
    }
    for (int i = 0, first = 0; i < nt; i++) {
        lthread *t = &ts[i];
        t->e = e;
        t->index = i;
        t->first = first;
        t->n = o->conns / nt + (i < o->conns % nt);
        t->conns = conns + first;
        first += t->n;
        if (o->requests && o->rate == 0)
            t->quota = o->requests / (uint64_t)nt + ((uint64_t)i < o->requests % (uint64_t)nt);
        sp_hist_init(&t->res.hist);
    }
    pthread_mutex_lock(&run_lock);
    engine_schedule(e);
    int perr = 0;
    int given = pool_start(ts, nt, &perr);
    if (given < nt - 1) {
        rc = fail(err, errlen, -perr, "cannot start engine thread %d: %s", given + 1,
                  strerror(perr));
        /* The threads that did start stop at t_end: pull it in. */
        e->t_end = sp_now();
    }
    int rc0 = sp_run(NULL, thread_main, &ts[0], NULL);
    pool_wait(given);
    pthread_mutex_unlock(&run_lock);
    if (rc < 0)
        goto out_mem;
    if (rc0 < 0) {
        rc = fail(err, errlen, rc0, "cannot run the engine here: %s%s", strerror(-rc0),
                  rc0 == -EDEADLK ? " (called from inside a coroutine)" : "");
        goto out_mem;
    }
    merge_results(e, ts, nt, r);
    r->threads = nt;
    for (int i = 0; i < nt; i++)
        if (ts[i].spawn_errno && !r->conns_errno)
            r->conns_errno = ts[i].spawn_errno;
    rc = 0;
out_mem:
    free(conns);
    free(ts);
out_engine:
    free(e);
    return rc;
}
