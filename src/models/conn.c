/* The blocking-style connection loop every stackful model shares, and the
 * two ways of waiting it runs on (see conn.h). */
#define _GNU_SOURCE
#include "models/conn.h"
#include "models/server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if SP_ASAN
#include <sanitizer/asan_interface.h>
#define SP_ASAN_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SP_ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SP_ASAN_POISON(p, n) ((void)(p), (void)(n))
#define SP_ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* After an error answer, what the client still sends is read and dropped
 * for up to 1 s or 64 KiB before the close: closing a socket with unread
 * bytes makes the kernel send RST, which can destroy the answer before the
 * client has read it (nginx's lingering_close, for the same reason). */
#define LINGER_MS 1000
#define LINGER_MAX_BYTES (64u * 1024)
/* Files go out in pieces with a fresh send deadline each: a slow client
 * that keeps reading is served, one that stops is dropped. */
#define SENDFILE_CHUNK (1u << 20)
/* An idle keep-alive connection of a busy-aware model gives way to waiting
 * ones once it has been idle BUSY_GRACE_MS, and is looked at every
 * BUSY_CHECK_MS after that.  The grace spares a client that is about to
 * send its next request (a close then would race with it and lose it, as
 * an idle timeout can); a client idle that long is between bursts. */
#define BUSY_GRACE_MS 200
#define BUSY_CHECK_MS 50
/* The CGI output buffer: the whole header section fits, and body bytes are
 * relayed through it in pieces of that size. */
#define CGI_BUF (SP_HTTP_CGI_HEAD_MAX + 8192u)
/* After SIGKILL a script is gone within microseconds; this only bounds a
 * process stuck in the kernel. */
#define CGI_KILL_WAIT_MS 1000
/* Room the stdin pipe may grow by beyond max_body (see cgi_feed). */
#define CGI_PIPE_MARGIN (64u * 1024)
/* Scripts get a PATH (RFC 3875 §4.1 lets the server add system variables):
 * a shell script that runs `cat` needs one. */
#define CGI_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

/* What a request leaves the connection in. */
enum next {
    NEXT_KEEP,   /* read the next request */
    NEXT_CLOSE,  /* close now */
    NEXT_LINGER, /* close after draining what the client still sends */
};

/* ---- I/O blocks: the connection's own, or lent ---- */

static bool srv_lends(const sp_conn_server *srv)
{
    return srv->ops->wait_idle != NULL;
}

void *sp_conn_io_take(sp_conn_io_pool *pool, size_t size)
{
    void *b = pool->free;

    if (b) {
        memcpy(&pool->free, b, sizeof(void *));
        pool->kept--;
        SP_ASAN_UNPOISON((char *)b + sizeof(void *), size - sizeof(void *));
    } else if (!(b = aligned_alloc(64, size))) {
        errno = ENOMEM;
    }
    return b;
}

void sp_conn_io_give(sp_conn_io_pool *pool, void *block, size_t size, size_t keep)
{
    if (pool->kept < keep) {
        memcpy(block, &pool->free, sizeof(void *));
        pool->free = block;
        pool->kept++;
        SP_ASAN_POISON((char *)block + sizeof(void *), size - sizeof(void *));
    } else {
        free(block);
    }
}

/* Makes b (an I/O block, or NULL) c's.  Nothing is parsed or routed
 * while c holds none: no byte is buffered, no request is in hand. */
static void io_set(sp_conn *c, char *b)
{
    c->in = b;
    c->out = b ? b + c->srv->io_out_off : NULL;
    c->req.headers = b ? (sp_http_header *)(void *)(b + c->srv->io_hdr_off) : NULL;
    c->act = b ? (sp_http_action *)(void *)(b + c->srv->io_act_off) : NULL;
}

/* Gives c an I/O block if it holds none.  0, or -1 with errno ENOMEM. */
static int io_get(sp_conn *c)
{
    char *b;

    if (c->in)
        return 0;
    if (!(b = sp_conn_io_take(c->srv->ops->io_pool(c), c->srv->io_size)))
        return -1;
    io_set(c, b);
    return 0;
}

/* Takes back a lent block, whatever it holds (c is idle or closed). */
static void io_put(sp_conn *c)
{
    if (!c->in || !srv_lends(c->srv))
        return;
    c->len = c->start = c->out_len = 0;
    sp_conn_io_give(c->srv->ops->io_pool(c), c->in, c->srv->io_size, SP_CONN_IO_KEEP);
    io_set(c, NULL);
}

void sp_conn_io_pool_drain(sp_conn_io_pool *pool)
{
    while (pool->free) {
        void *b = pool->free;

        memcpy(&pool->free, b, sizeof(void *));
        free(b);
    }
    pool->kept = 0;
}

/* ---- small helpers ---- */

static const char *conn_date(sp_conn *c)
{
    struct timespec ts;

    /* The coarse clock is a vDSO read of the last tick: enough for a header
     * of one-second resolution, and cheaper than CLOCK_REALTIME. */
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return sp_http_date_get(c->date, ts.tv_sec);
}

static bool conn_busy(sp_conn *c)
{
    return c->srv->busy && c->srv->busy(c->srv);
}

/* The send deadline: a client that takes nothing for an idle timeout is
 * dropped. */
static int64_t send_deadline(sp_conn *c)
{
    return sp_deadline_ms(c->srv->opts->idle_timeout_ms);
}

/* Writes every byte of iov[0, n) (which it consumes).  0 or -1. */
static int write_all(sp_conn *c, int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = c->srv->ops->writev(c, fd, iov, n, send_deadline(c));

        if (w < 0)
            return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Writes the answers waiting in out[].  0 or -1 (the connection is lost). */
static int flush(sp_conn *c)
{
    struct iovec iov = {c->out, c->out_len};
    int rc;

    if (c->out_len == 0)
        return 0;
    rc = write_all(c, c->fd, &iov, 1);
    c->out_len = 0;
    return rc;
}

/* Whether the server wants to keep the connection after this answer.
 * Requests already buffered behind this one are always answered: they
 * were read, and a stop or a busy pool must not drop them. */
static bool keep_wish(sp_conn *c)
{
    if (c->start < c->len)
        return true;
    return !sp_server_stopping() && !conn_busy(c);
}

/* After an answer was put in out[]: answers to pipelined requests wait
 * while the next request is already buffered, so a batch goes out in one
 * write; anything else goes now. */
static enum next after_answer(sp_conn *c, bool keep)
{
    if (keep && c->start < c->len)
        return NEXT_KEEP;
    if (flush(c) < 0)
        return NEXT_CLOSE;
    if (keep)
        return NEXT_KEEP;
    return c->start < c->len ? NEXT_LINGER : NEXT_CLOSE;
}

/* The answer to a parser, body or timeout error; the connection ends. */
static enum next answer_error(sp_conn *c, int status)
{
    ssize_t n = sp_http_write_error(c->out + c->out_len, SP_CONN_OUT_CAP - c->out_len,
                                    status, conn_date(c));

    if (n < 0 && c->out_len > 0) {
        if (flush(c) < 0)
            return NEXT_CLOSE;
        n = sp_http_write_error(c->out, SP_CONN_OUT_CAP, status, conn_date(c));
    }
    if (n < 0)
        return NEXT_CLOSE;
    c->out_len += (size_t)n;
    if (flush(c) < 0)
        return NEXT_CLOSE;
    /* A timed-out client is slow by definition: no lingering for it. */
    return status == 408 ? NEXT_CLOSE : NEXT_LINGER;
}

/* The answer to a RESPOND or SLEEP action (act.status), or to anything the
 * model turned into one. */
static enum next reply(sp_conn *c)
{
    bool keep = keep_wish(c);
    const char *date = conn_date(c);
    ssize_t n;

    for (;;) {
        n = sp_http_write_reply(c->out + c->out_len, SP_CONN_OUT_CAP - c->out_len,
                                &c->req, c->act, keep, date);
        if (n >= 0 || c->out_len == 0)
            break;
        if (flush(c) < 0) /* out[] full of pipelined answers */
            return NEXT_CLOSE;
    }
    if (n < 0)
        return NEXT_CLOSE;
    c->out_len += (size_t)n;
    return after_answer(c, keep && c->req.keep_alive);
}

static enum next respond(sp_conn *c, int status)
{
    c->act->kind = SP_HTTP_ACT_RESPOND;
    c->act->status = status;
    c->act->allow = NULL;
    return reply(c);
}

static void conn_close(sp_conn *c, bool linger)
{
    const sp_conn_ops *ops = c->srv->ops;

    if (c->fd < 0)
        return;
    if (linger && io_get(c) == 0) {
        int64_t until = sp_deadline_ms(LINGER_MS);
        size_t total = 0;

        shutdown(c->fd, SHUT_WR); /* our answer, then FIN */
        while (total < LINGER_MAX_BYTES) {
            ssize_t n = ops->read(c, c->fd, c->in, c->srv->in_cap, until);

            if (n <= 0)
                break;
            total += (size_t)n;
        }
    }
    ops->close(c->fd);
    c->fd = -1;
    io_put(c);
}

/* ---- reading requests ---- */

/* The read of an idle connection whose model lends I/O blocks: the block
 * goes back while it waits for a request, and is taken again once bytes
 * may be there (nothing is buffered or unsent: c->len == c->start == 0,
 * out_len == 0).  Returns as the model's read. */
static ssize_t idle_read(sp_conn *c, int64_t deadline)
{
    const sp_conn_ops *ops = c->srv->ops;

    assert(c->len == 0 && c->start == 0 && c->out_len == 0);
    for (;;) {
        bool last;
        ssize_t n;
        int rc;

        io_put(c);
        c->idle = true;
        rc = ops->wait_idle(c, c->fd, deadline);
        c->idle = false;
        if (rc < 0 && errno != ETIMEDOUT)
            return -1;
        /* Past the deadline, or stopping, what is there is still taken,
         * as the idle read of a model that lends nothing takes it. */
        last = rc < 0 || sp_server_stopping();
        if (io_get(c) < 0)
            return -1;
        /* deadline 0, long past: take what is there, wait for nothing
         * (c->idle is false, so the model reads plainly) */
        n = ops->read(c, c->fd, c->in, c->srv->in_cap, 0);
        if (n >= 0 || errno != ETIMEDOUT || last)
            return n;
        /* the wake promised data that was not there: wait again */
    }
}

/* Reads until a whole request head is buffered at in[start].  Returns its
 * length, 0 when the connection should close quietly (end of file, an idle
 * timeout, a stop, an error), or -status (a parser error, or -408 when the
 * header timeout passed mid-head). */
static ssize_t read_head(sp_conn *c)
{
    sp_conn_server *srv = c->srv;
    const sp_server_opts *o = srv->opts;
    /* Armed once per request, at its first byte (at the accept for the
     * first request): trickled bytes never extend it. */
    int64_t head_deadline = c->first_deadline;

    c->first_deadline = -1;
    if (c->start == c->len) {
        c->start = c->len = 0;
    } else if (c->start > SP_CONN_IN_SLACK / 2) {
        /* Parse pipelined requests in place, and move the rest down only
         * once it could crowd the largest head out of the buffer. */
        memmove(c->in, c->in + c->start, c->len - c->start);
        c->len -= c->start;
        c->start = 0;
    }
    sp_http_request_reset(&c->req);
    for (;;) {
        bool idle = c->len == c->start;
        int64_t deadline;
        ssize_t n;

        if (!idle) {
            n = sp_http_parse_request(&c->req, c->in + c->start, c->len - c->start);
            if (n != SP_HTTP_AGAIN)
                return n;
            /* Only a head that is still incomplete needs its deadline:
             * most arrive whole in one read, and then no clock is read. */
            if (head_deadline < 0)
                head_deadline = sp_deadline_ms(o->header_timeout_ms);
            if (c->len == srv->in_cap)
                return -431; /* unreachable: in_cap holds the largest head */
        }
        if (flush(c) < 0)
            return 0;
        if (!idle)
            deadline = head_deadline;
        else if (sp_server_stopping())
            deadline = sp_now(); /* take what is there, wait for nothing */
        else if (head_deadline >= 0)
            deadline = head_deadline;
        else
            deadline = sp_deadline_ms(o->idle_timeout_ms);
        if (idle && srv_lends(c->srv)) {
            n = idle_read(c, deadline);
        } else {
            c->idle = idle;
            n = srv->ops->read(c, c->fd, c->in + c->len, srv->in_cap - c->len, deadline);
            c->idle = false;
        }
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == ETIMEDOUT && !idle)
            return -408;
        return 0;
    }
}

typedef void (*body_sink)(void *arg, const char *p, size_t n);

/* Reads the body of the request whose head ends at in[at], handing each
 * decoded span to sink (NULL: dropped), and leaves `start` at the next
 * request.  Returns 0, -status for a framing error (answer it, then close),
 * or -1 when the connection is lost or the client stalls. */
static int read_body(sp_conn *c, size_t at, body_sink sink, void *arg)
{
    const sp_server_opts *o = c->srv->opts;
    /* Body bytes are read after the head, which the answer still needs
     * (the header pointers point into it). */
    size_t base = at;

    sp_http_body_init(&c->body, &c->req, &o->limits);
    if (!sp_http_body_done(&c->body) && c->req.expect_continue && at == c->len) {
        static const char cont[] = SP_HTTP_CONTINUE;
        struct iovec iov = {(void *)cont, sizeof cont - 1};

        if (flush(c) < 0 || write_all(c, c->fd, &iov, 1) < 0)
            return -1;
    }
    while (!sp_http_body_done(&c->body)) {
        ssize_t n;

        if (at < c->len) {
            const char *data;
            size_t dlen;

            n = sp_http_body_parse(&c->body, c->in + at, c->len - at, &data, &dlen);
            if (n < 0)
                return (int)n;
            at += (size_t)n;
            if (dlen && sink)
                sink(arg, data, dlen);
            continue;
        }
        c->len = at = base; /* all consumed: read over it */
        if (flush(c) < 0)
            return -1;
        n = c->srv->ops->read(c, c->fd, c->in + base, c->srv->in_cap - base,
                              sp_deadline_ms(o->idle_timeout_ms));
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
    c->start = at;
    return 0;
}

/* ---- static files ---- */

static enum next serve_static(sp_conn *c)
{
    const sp_conn_ops *ops = c->srv->ops;
    sp_http_file_reply fr;
    bool keep;
    ssize_t n;
    off_t off;
    uint64_t left;
    int fd;

    if (c->srv->root_fd < 0)
        return respond(c, 404);
    if (flush(c) < 0) /* the open may block: earlier answers go first */
        return NEXT_CLOSE;
    fd = ops->static_open(c);
    if (fd < 0)
        return respond(c, sp_http_static_errno_status(errno));
    keep = keep_wish(c);
    n = sp_http_static_head(c->out, SP_CONN_OUT_CAP, &c->req, c->act->arg,
                            c->act->arg_len, &c->st, keep, conn_date(c), &fr);
    if (n < 0) {
        ops->close(fd);
        return NEXT_CLOSE;
    }
    c->out_len = (size_t)n;
    if (flush(c) < 0) {
        ops->close(fd);
        return NEXT_CLOSE;
    }
    off = (off_t)fr.offset;
    left = fr.length;
    while (left > 0) {
        size_t chunk = left > SENDFILE_CHUNK ? SENDFILE_CHUNK : (size_t)left;
        ssize_t s = ops->sendfile(c, fd, &off, chunk, send_deadline(c));

        /* 0: the file shrank under us.  Either way the length we announced
         * cannot be kept, and only a close tells the client. */
        if (s <= 0) {
            ops->close(fd);
            return NEXT_CLOSE;
        }
        left -= (uint64_t)s;
    }
    ops->close(fd);
    return after_answer(c, keep && c->req.keep_alive);
}

/* ---- CGI ---- */

/* One script run.  On the heap: a CGI request forks a process, next to
 * which one malloc is noise, and its buffer would crowd a coroutine's
 * stack. */
struct cgi_run {
    sp_cgi_proc p;
    int in_w;            /* our end of the script's stdin, O_NONBLOCK */
    uint64_t pipe_max;   /* how far the stdin pipe may grow */
    bool feed_failed;    /* the body did not fit in the pipe */
    bool kill;           /* we gave up on the script */
    int64_t deadline;
    sp_http_cgi_reply reply;
    char buf[CGI_BUF];
};

/* The body goes into the script's stdin pipe BEFORE the script starts: the
 * pipe grows (F_SETPIPE_SZ) to hold it, up to max_body.  So the script can
 * never block us while we block it (a script that writes output before
 * reading its input cannot deadlock), CONTENT_LENGTH is known for chunked
 * bodies too, and no body buffer is needed.  Writes never wait: the pipe
 * is non-blocking and nobody reads it yet. */
int sp_cgi_feed(int fd, uint64_t max, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            int cur = fcntl(fd, F_GETPIPE_SZ);

            if (cur > 0 && (uint64_t)cur < max && fcntl(fd, F_SETPIPE_SZ, cur * 2) > cur)
                continue;
        }
        /* Refused: the user's pipe quota (pipe-user-pages-soft) is spent. */
        return -1;
    }
    return 0;
}

static void cgi_feed(void *arg, const char *p, size_t n)
{
    struct cgi_run *r = arg;

    if (!r->feed_failed && sp_cgi_feed(r->in_w, r->pipe_max, p, n) < 0)
        r->feed_failed = true;
}

/* Sends body bytes of the script per the framing, preceded by the head
 * still in out[] the first time.  0 or -1. */
static int cgi_send(sp_conn *c, sp_http_framing fr, const char *data, size_t n,
                    uint64_t *left)
{
    char pre[32], post[8];
    sp_http_writer wp, wq;
    struct iovec iov[4];
    int k = 0;

    sp_http_writer_init(&wp, pre, sizeof pre);
    sp_http_writer_init(&wq, post, sizeof post);
    if (fr == SP_HTTP_FRAME_NONE)
        n = 0; /* HEAD, 204, 304: the script's body is not sent */
    if (fr == SP_HTTP_FRAME_LENGTH) {
        if (n > *left)
            n = (size_t)*left; /* more than it announced: dropped */
        *left -= n;
    }
    if (c->out_len) {
        iov[k].iov_base = c->out;
        iov[k++].iov_len = c->out_len;
        c->out_len = 0;
    }
    if (n && fr == SP_HTTP_FRAME_CHUNKED) {
        sp_http_put_chunk_begin(&wp, n);
        sp_http_put_chunk_end(&wq);
        iov[k].iov_base = pre;
        iov[k++].iov_len = wp.len;
    }
    if (n) {
        iov[k].iov_base = (void *)data;
        iov[k++].iov_len = n;
    }
    if (n && fr == SP_HTTP_FRAME_CHUNKED) {
        iov[k].iov_base = post;
        iov[k++].iov_len = wq.len;
    }
    return k ? write_all(c, c->fd, iov, k) : 0;
}

/* The script failed before it answered: 502 or 504, and it is killed. */
static enum next cgi_fail(sp_conn *c, struct cgi_run *r, int status)
{
    r->kill = true;
    return respond(c, status);
}

/* Reads the script's output and relays it as the answer. */
static enum next cgi_relay(sp_conn *c, struct cgi_run *r)
{
    const sp_conn_ops *ops = c->srv->ops;
    sp_http_framing fr;
    uint64_t left;
    size_t n = 0;
    ssize_t head, got;
    bool keep;

    sp_http_cgi_reply_init(&r->reply);
    for (;;) {
        got = ops->read(c, r->p.out_fd, r->buf + n, sizeof r->buf - n, r->deadline);
        if (got < 0 && errno == ETIMEDOUT)
            return cgi_fail(c, r, 504);
        if (got <= 0)
            return cgi_fail(c, r, 502); /* no valid head before its end */
        n += (size_t)got;
        head = sp_http_cgi_parse(&r->reply, r->buf, n);
        if (head > 0)
            break;
        if (head < 0)
            return cgi_fail(c, r, 502);
    }
    keep = keep_wish(c);
    got = sp_http_cgi_write_head(c->out, SP_CONN_OUT_CAP, &r->reply, r->buf, &c->req,
                                 keep, conn_date(c), &fr);
    if (got < 0)
        return cgi_fail(c, r, 502);
    c->out_len = (size_t)got;
    keep = keep && c->req.keep_alive && fr != SP_HTTP_FRAME_CLOSE;
    left = r->reply.content_length;
    if (cgi_send(c, fr, r->buf + head, n - (size_t)head, &left) < 0)
        goto lost;
    for (;;) {
        got = ops->read(c, r->p.out_fd, r->buf, sizeof r->buf, r->deadline);
        if (got == 0)
            break;
        if (got < 0 || cgi_send(c, fr, r->buf, (size_t)got, &left) < 0)
            goto lost; /* a timeout after the head: only a close can say it */
    }
    if (fr == SP_HTTP_FRAME_CHUNKED) {
        char last[8];
        sp_http_writer w;
        struct iovec iov;

        sp_http_writer_init(&w, last, sizeof last);
        sp_http_put_last_chunk(&w);
        iov.iov_base = last;
        iov.iov_len = w.len;
        if (write_all(c, c->fd, &iov, 1) < 0)
            return NEXT_CLOSE;
    }
    if (fr == SP_HTTP_FRAME_LENGTH && left > 0)
        return NEXT_CLOSE; /* it sent less than it announced */
    return after_answer(c, keep);
lost:
    r->kill = true;
    return NEXT_CLOSE;
}

/* Reaps the script, waiting for it to exit (until the CGI deadline, then
 * SIGKILL), so no zombie stays behind. */
static void cgi_reap_wait(sp_conn *c, struct cgi_run *r)
{
    const sp_conn_ops *ops = c->srv->ops;
    int64_t until = r->deadline;
    bool kill_now = r->kill, killed = false;
    int delay_ms = 1;

    for (;;) {
        int rc = sp_cgi_reap(&r->p, kill_now);

        if (rc != 0)
            return; /* reaped, or nothing to reap (ECHILD is reaped too) */
        if (kill_now) {
            killed = true;
            kill_now = false;
            until = sp_deadline_ms(CGI_KILL_WAIT_MS);
        }
        if (sp_now() >= until) {
            if (killed)
                return; /* unkillable (stuck in the kernel): rather a zombie
                         * than a connection held for ever */
            kill_now = true;
            continue;
        }
        if (r->p.pidfd >= 0) {
            ops->wait_readable(c, r->p.pidfd, until);
        } else {
            /* Without pidfd_open: look again 1 ms later, doubling to 50. */
            int64_t next = sp_deadline_ms(delay_ms);

            ops->sleep_until(c, next < until ? next : until);
            delay_ms = delay_ms * 2 > 50 ? 50 : delay_ms * 2;
        }
    }
}

static enum next serve_cgi(sp_conn *c, size_t body_at)
{
    const sp_conn_ops *ops = c->srv->ops;
    const sp_http_limits *l = &c->srv->opts->limits;
    struct cgi_run *r;
    int in[2] = {-1, -1}, rc;
    enum next nx;

    if (flush(c) < 0)
        return NEXT_CLOSE;
    r = malloc(sizeof *r);
    if (!r || pipe2(in, O_CLOEXEC) < 0) {
        free(r);
        rc = read_body(c, body_at, NULL, NULL);
        return rc == 0 ? respond(c, 503) : rc == -1 ? NEXT_CLOSE : answer_error(c, -rc);
    }
    memset(&r->p, 0, sizeof r->p);
    r->p.pidfd = r->p.out_fd = -1;
    r->in_w = in[1];
    /* A page-sized margin: data written in odd sizes may not fill every
     * page of the pipe. */
    r->pipe_max = l->max_body + CGI_PIPE_MARGIN;
    r->feed_failed = r->kill = false;
    fcntl(in[1], F_SETFL, O_NONBLOCK); /* ours only: the script's end blocks */
    rc = read_body(c, body_at, cgi_feed, r);
    close(in[1]); /* the script sees end-of-file after the body */
    if (rc < 0 || r->feed_failed) {
        close(in[0]);
        free(r);
        return rc == -1 ? NEXT_CLOSE : rc < 0 ? answer_error(c, -rc) : respond(c, 503);
    }
    rc = sp_cgi_spawn(c->srv, &c->req, c->act, (const struct sockaddr *)&c->peer,
                      c->req.body_kind == SP_HTTP_BODY_NONE ? -1 : (int64_t)c->body.total,
                      in[0], &r->p);
    close(in[0]);
    if (rc < 0) {
        free(r);
        return respond(c, rc == -ENOENT ? 404 : rc == -EACCES ? 403 : 500);
    }
    r->deadline = sp_deadline_ms(SP_CONN_CGI_TIMEOUT_MS);
    nx = cgi_relay(c, r);
    cgi_reap_wait(c, r);
    ops->close(r->p.out_fd);
    if (r->p.pidfd >= 0)
        ops->close(r->p.pidfd);
    free(r);
    return nx;
}

/* ---- one request ---- */

static enum next serve_request(sp_conn *c, size_t head_len)
{
    size_t body_at = c->start + head_len;
    int rc;

    c->requests++;
    sp_http_route(&c->req, c->act);
    if (c->act->kind == SP_HTTP_ACT_CGI && c->srv->cgi_dir)
        return serve_cgi(c, body_at); /* it takes the body itself */
    rc = read_body(c, body_at, NULL, NULL);
    if (rc < 0)
        return rc == -1 ? NEXT_CLOSE : answer_error(c, -rc);
    switch (c->act->kind) {
    case SP_HTTP_ACT_RESPOND:
        return reply(c);
    case SP_HTTP_ACT_SLEEP:
        if (flush(c) < 0)
            return NEXT_CLOSE;
        c->srv->ops->sleep_until(c, sp_deadline_ms(c->act->sleep_ms));
        return reply(c);
    case SP_HTTP_ACT_STATIC:
        return serve_static(c);
    case SP_HTTP_ACT_CGI:
    default:
        return respond(c, 404); /* no --cgi-dir */
    }
}

/* ---- the connection ---- */

sp_conn *sp_conn_new(sp_conn_server *srv)
{
    bool lends = srv_lends(srv);
    sp_conn *c = malloc(sizeof *c + (lends ? 0 : srv->io_size));

    if (c) {
        c->srv = srv;
        c->fd = -1;
        c->next = c->prev = NULL;
        c->owner = NULL;
        io_set(c, lends ? NULL : (char *)(c + 1));
    }
    return c;
}

void sp_conn_free(sp_conn *c)
{
    io_put(c);
    free(c);
}

void sp_conn_start(sp_conn *c, int fd, const struct sockaddr *peer,
                   socklen_t peer_len, sp_http_date_cache *date)
{
    const sp_server_opts *o = c->srv->opts;
    int one = 1;

    c->fd = fd;
    c->idle = false;
    if (peer_len > sizeof c->peer)
        peer_len = sizeof c->peer;
    c->peer_len = peer_len;
    memset(&c->peer, 0, sizeof c->peer);
    if (peer)
        memcpy(&c->peer, peer, peer_len);
    if (!date) {
        sp_http_date_cache_init(&c->own_date);
        date = &c->own_date;
    }
    c->date = date;
    c->len = c->start = c->out_len = 0;
    c->requests = 0;
    c->first_deadline = sp_deadline_ms(o->header_timeout_ms);
    sp_http_request_init(&c->req, c->req.headers, c->srv->hdr_max, &o->limits);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void sp_conn_serve(sp_conn *c)
{
    enum next nx;

    for (;;) {
        ssize_t head = read_head(c);

        if (head == 0) {
            nx = NEXT_CLOSE;
            break;
        }
        if (head < 0) {
            nx = answer_error(c, (int)-head);
            break;
        }
        nx = serve_request(c, (size_t)head);
        if (nx != NEXT_KEEP)
            break;
    }
    conn_close(c, nx == NEXT_LINGER);
}

bool sp_conn_stop_idle(sp_conn *c)
{
    if (!c->idle || c->fd < 0)
        return false;
    shutdown(c->fd, SHUT_RD);
    return true;
}

/* ---- the server ---- */

int sp_conn_server_init(sp_conn_server *srv, const sp_server_opts *o,
                        const sp_conn_ops *ops, int port)
{
    memset(srv, 0, sizeof *srv);
    srv->opts = o;
    srv->ops = ops;
    srv->port = port;
    srv->root_fd = -1;
    srv->head_max = o->limits.max_request_line + o->limits.max_header_bytes;
    srv->in_cap = srv->head_max + SP_CONN_IN_SLACK;
    srv->hdr_max = o->limits.max_headers;
    srv->io_out_off = (srv->in_cap + 63) & ~(size_t)63;
    srv->io_hdr_off = (srv->io_out_off + SP_CONN_OUT_CAP + 63) & ~(size_t)63;
    srv->io_act_off = (srv->io_hdr_off + srv->hdr_max * sizeof(sp_http_header) + 63) & ~(size_t)63;
    srv->io_size = (srv->io_act_off + sizeof(sp_http_action) + 63) & ~(size_t)63;
    if (o->root) {
        srv->root_fd = open(o->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (srv->root_fd < 0)
            return -errno;
    }
    if (o->cgi_dir) {
        struct stat st;

        srv->cgi_dir = realpath(o->cgi_dir, NULL);
        if (!srv->cgi_dir || stat(srv->cgi_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
            int err = srv->cgi_dir ? ENOTDIR : errno;

            sp_conn_server_destroy(srv);
            return -err;
        }
    }
    return 0;
}

void sp_conn_server_destroy(sp_conn_server *srv)
{
    if (srv->root_fd >= 0)
        close(srv->root_fd);
    srv->root_fd = -1;
    free(srv->cgi_dir);
    srv->cgi_dir = NULL;
}

/* ---- CGI processes ---- */

/* The environment: sp_http_cgi_env's variables, then PATH and
 * SCRIPT_FILENAME (which is also the path to exec).  One heap block; the
 * child has copied it by the time posix_spawn returns (the parent waits
 * for the exec). */
struct cgi_env {
    char **envp;
    char *path;
};

static int cgi_env_build(const sp_conn_server *srv, const sp_http_request *req,
                         const sp_http_action *act, const struct sockaddr *peer,
                         int64_t content_length, struct cgi_env *e)
{
    const sp_http_limits *l = &srv->opts->limits;
    /* Every header may become a variable; the request line appears in
     * REQUEST_URI and QUERY_STRING; a header name grows by "HTTP_" and
     * "=" and a NUL. */
    size_t env_cap = l->max_headers + 32;
    size_t str_cap = 2 * l->max_request_line + l->max_header_bytes + 8 * l->max_headers +
                     2 * SP_HTTP_PATH_MAX + 1024;
    size_t dir_len = strlen(srv->cgi_dir);
    size_t path_cap = sizeof "SCRIPT_FILENAME=" + dir_len + 1 + act->arg_len + 1;
    char addr[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    sp_http_cgi_info info;
    char *strings, *sf;
    int n;

    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;

        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        port = ntohs(in->sin_port);
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;

        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        port = ntohs(in6->sin6_port);
    }
    info.remote_addr = addr;
    info.remote_port = port;
    info.server_name = NULL;
    info.server_port = (unsigned)srv->port;
    info.content_length = content_length;

    e->envp = malloc(env_cap * sizeof *e->envp + str_cap + path_cap);
    if (!e->envp)
        return -ENOMEM;
    strings = (char *)(e->envp + env_cap);
    /* Two slots stay free for PATH and SCRIPT_FILENAME. */
    n = sp_http_cgi_env(req, act, &info, e->envp, env_cap - 2, strings, str_cap);
    if (n < 0) {
        free(e->envp);
        return n;
    }
    sf = strings + str_cap;
    snprintf(sf, path_cap, "SCRIPT_FILENAME=%s/%s", srv->cgi_dir, act->arg);
    e->path = sf + sizeof "SCRIPT_FILENAME=" - 1;
    e->envp[n++] = (char *)CGI_PATH;
    e->envp[n++] = sf;
    e->envp[n] = NULL;
    return 0;
}

int sp_cgi_spawn(const sp_conn_server *srv, const sp_http_request *req,
                 const sp_http_action *act, const struct sockaddr *peer,
                 int64_t content_length, int stdin_fd, sp_cgi_proc *p)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    struct cgi_env env;
    int out[2], rc;
    pid_t pid;
    char *argv[2];

    if (!srv->cgi_dir)
        return -ENOENT;
    rc = cgi_env_build(srv, req, act, peer, content_length, &env);
    if (rc < 0)
        return rc;
    if (pipe2(out, O_CLOEXEC) < 0) {
        rc = -errno;
        goto fail_pipe;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    if (stdin_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, stdin_fd, STDIN_FILENO);
    else
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    /* RFC 3875 §7.2: the script runs in its own directory. */
    posix_spawn_file_actions_addchdir_np(&fa, srv->cgi_dir);
    /* The server ignores SIGPIPE and may block signals in some threads; a
     * script starts as any program does. */
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGCHLD);
    sigaddset(&dfl, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    argv[0] = env.path;
    argv[1] = NULL;
    rc = -posix_spawn(&pid, env.path, &fa, &attr, argv, env.envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc < 0) {
        close(out[0]);
        goto fail_pipe;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK); /* ours only: the script's end blocks */
    p->pid = pid;
    p->out_fd = out[0];
    /* A pidfd turns the exit into a readable descriptor (Linux 5.3): a
     * coroutine or an event loop waits for it like any socket. */
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0)
        p->pidfd = -1;
    free(env.envp);
    return 0;
fail_pipe:
    free(env.envp);
    return rc;
}

int sp_cgi_reap(sp_cgi_proc *p, bool kill_it)
{
    pid_t w;
    int st;

    if (p->pid <= 0)
        return 1;
    if (kill_it)
        kill(p->pid, SIGKILL);
    do
        w = waitpid(p->pid, &st, WNOHANG);
    while (w < 0 && errno == EINTR);
    if (w == 0)
        return 0;
    if (w < 0 && errno != ECHILD)
        return -1;
    p->pid = 0; /* reaped; ECHILD: someone reaped it for us */
    return 1;
}

/* ---- blocking waits ---- */

/* poll() for ev on fd until the deadline; while c is idle, the stop
 * descriptor ends the wait too, and a busy server is looked at every
 * BUSY_CHECK_MS.  0 when fd is ready, or -1 with ETIMEDOUT/ECANCELED. */
static int blk_wait(sp_conn *c, int fd, short ev, int64_t deadline)
{
    bool idle = c->idle;
    /* Only a keep-alive wait gives way: a new connection's first request
     * is what the waiting ones are waiting for too. */
    bool busy_aware = idle && c->requests > 0 && c->srv->busy;
    int64_t give_way = busy_aware ? sp_deadline_ms(BUSY_GRACE_MS) : -1;

    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = ev},
                              {.fd = idle ? sp_server_stop_fd() : -1, .events = POLLIN}};
        int64_t now = sp_now(), until = deadline;
        int ms = -1;

        if (busy_aware) /* wake for the next look at `busy` */
            until = now < give_way ? give_way : now + BUSY_CHECK_MS * 1000000LL;
        if (deadline >= 0 && deadline < until)
            until = deadline;
        if (until >= 0) {
            int64_t left = until - now;

            ms = left <= 0 ? 0 : left / 1000000 >= INT_MAX ? INT_MAX
                                                          : (int)((left + 999999) / 1000000);
        }
        if (poll(p, 2, ms) < 0 && errno != EINTR)
            return -1;
        if (p[0].revents)
            return 0; /* ready, or an error the call itself will report */
        if (idle && ((p[1].revents & POLLIN) || sp_server_stopping() ||
                     (busy_aware && sp_now() >= give_way && c->srv->busy(c->srv)))) {
            errno = ECANCELED;
            return -1;
        }
        if (deadline >= 0 && sp_now() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

static ssize_t blk_read(sp_conn *c, int fd, void *buf, size_t len, int64_t deadline)
{
    /* An idle keep-alive connection rarely has its next request there
     * already: poll first instead of a read that would say EAGAIN. */
    bool wait_first = c->idle;

    for (;;) {
        ssize_t n;

        if (wait_first && blk_wait(c, fd, POLLIN, deadline) < 0)
            return -1;
        n = read(fd, buf, len);
        if (n >= 0)
            return n;
        wait_first = errno != EINTR;
        if (errno != EINTR && errno != EAGAIN)
            return -1;
    }
}

static ssize_t blk_writev(sp_conn *c, int fd, const struct iovec *iov, int n,
                          int64_t deadline)
{
    for (;;) {
        ssize_t w = writev(fd, iov, n);

        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || blk_wait(c, fd, POLLOUT, deadline) < 0)
            return -1;
    }
}

static ssize_t blk_sendfile(sp_conn *c, int in_fd, off_t *off, size_t n,
                            int64_t deadline)
{
    for (;;) {
        ssize_t w = sendfile(c->fd, in_fd, off, n);

        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || blk_wait(c, c->fd, POLLOUT, deadline) < 0)
            return -1;
    }
}

static int blk_sleep_until(sp_conn *c, int64_t deadline)
{
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    int rc;

    (void)c;
    /* Absolute: a signal (EINTR) does not stretch the sleep when resumed. */
    while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR)
        ;
    return rc ? -1 : 0;
}

static int blk_static_open(sp_conn *c)
{
    return sp_http_static_open(c->srv->root_fd, c->act->arg, &c->st);
}

static int blk_wait_readable(sp_conn *c, int fd, int64_t deadline)
{
    return blk_wait(c, fd, POLLIN, deadline);
}

static int blk_close(int fd)
{
    return close(fd);
}

const sp_conn_ops sp_conn_ops_blocking = {
    .name = "blocking",
    .read = blk_read,
    .writev = blk_writev,
    .sendfile = blk_sendfile,
    .sleep_until = blk_sleep_until,
    .static_open = blk_static_open,
    .wait_readable = blk_wait_readable,
    .close = blk_close,
};

/* ---- coroutine waits ---- */

static ssize_t co_read(sp_conn *c, int fd, void *buf, size_t len, int64_t deadline)
{
    (void)c;
    return sp_read(fd, buf, len, deadline);
}

static ssize_t co_writev(sp_conn *c, int fd, const struct iovec *iov, int n,
                         int64_t deadline)
{
    (void)c;
    return sp_writev(fd, iov, n, deadline);
}

static ssize_t co_sendfile(sp_conn *c, int in_fd, off_t *off, size_t n, int64_t deadline)
{
    return sp_sendfile(c->fd, in_fd, off, n, deadline);
}

static int co_sleep_until(sp_conn *c, int64_t deadline)
{
    (void)c;
    return sp_sleep_until(deadline);
}

/* Runs on an offload helper: the connection is on the heap and nothing
 * cancels its coroutine, so it outlives the job. */
static void *open_job(void *arg)
{
    sp_conn *c = arg;
    int fd = sp_http_static_open(c->srv->root_fd, c->act->arg, &c->st);

    c->job_err = fd < 0 ? errno : 0;
    return (void *)(intptr_t)fd;
}

static int co_static_open(sp_conn *c)
{
    void *res;
    int fd;

    if (sp_offload(open_job, c, &res) < 0)
        return -1;
    fd = (int)(intptr_t)res;
    if (fd < 0)
        errno = c->job_err;
    return fd;
}

static int co_wait_readable(sp_conn *c, int fd, int64_t deadline)
{
    (void)c;
    return sp_wait_fd(fd, SP_READ, deadline) < 0 ? -1 : 0;
}

const sp_conn_ops sp_conn_ops_coro = {
    .name = "coroutine",
    .read = co_read,
    .writev = co_writev,
    .sendfile = co_sendfile,
    .sleep_until = co_sleep_until,
    .static_open = co_static_open,
    .wait_readable = co_wait_readable,
    .close = sp_close,
};
