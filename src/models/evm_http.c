/* One connection's HTTP exchange, shared by the event-loop models: the glue
 * between the bytes a model reads and the answers it writes.  It decides,
 * the model waits.  See evm.h. */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "models/evm.h"

/* ---- non-blocking I/O ------------------------------------------------------ */

ssize_t sp__evm_read(sp__evm_conn *c)
{
    size_t room = c->srv->in_cap - c->in_end;
    ssize_t n;

    if (!c->in && sp__evm_io_get(c) < 0)
        return -1;
    assert(room > 0); /* guaranteed by SP__EVM_IN_SLACK and the compaction */
    /* recv, not read: it skips the VFS layer (vfs_read, fdget_pos), a few
     * per cent of the kernel's time per request in the profiles */
    n = recv(c->fd, c->in + c->in_end, room, 0);
    if (n > 0) {
        c->in_end += (size_t)n;
        if ((size_t)n < room && !c->rdhup)
            c->rd_ready = false;
        return n;
    }
    if (n == 0) {
        c->peer_eof = true;
        c->rd_ready = false;
    } else if (errno == EAGAIN) {
        c->rd_ready = false;
    }
    return n;
}

int sp__evm_flush(sp__evm_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            c->wr_ready = false;
            return 0;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    sp__evm_io_put(c); /* idle now: its buffers serve the busy ones */
    return 1;
}

int sp__evm_sendfile(sp__evm_conn *c)
{
    size_t turn = 0;

    assert(c->out_off == c->out_len); /* the head goes first */
    while (c->file_left) {
        off_t off = (off_t)c->file_off;
        size_t n = c->file_left < SP__EVM_SENDFILE_CHUNK ? (size_t)c->file_left
                                                          : SP__EVM_SENDFILE_CHUNK;
        ssize_t r = sendfile(c->fd, c->file_fd, &off, n);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            c->wr_ready = false;
            return 0;
        }
        if (r == 0)
            return -1; /* the file shrank: the promised length cannot be kept */
        c->file_off += (uint64_t)r;
        c->file_left -= (uint64_t)r;
        if ((turn += (size_t)r) >= SP__EVM_SENDFILE_TURN && c->file_left)
            return 2;
    }
    close(c->file_fd);
    c->file_fd = -1;
    return 1;
}

bool sp__evm_out_full(const sp__evm_conn *c)
{
    return SP__EVM_OUT_CAP - c->out_len < SP__EVM_ANSWER_MAX;
}

bool sp__evm_idle(const sp__evm_conn *c)
{
    return !c->in_request && c->in_end == c->in_start &&
           c->out_off == c->out_len && !c->job_busy && !c->cgi &&
           c->file_fd < 0;
}

bool sp__evm_buffered(const sp__evm_conn *c)
{
    return c->in_end > c->in_start;
}

/* ---- the request ---------------------------------------------------------- */

/* The server's wish to keep the connection: always, except when shutting
 * down, where only a pipelined request already read keeps it (graceful
 * shutdown loses no request that was read). */
static bool keep_wish(const sp__evm_conn *c)
{
    return !c->srv->stopping || c->in_end > c->in_pos;
}

static size_t out_room(const sp__evm_conn *c)
{
    assert(c->out); /* lent since the request's first byte was read */
    return SP__EVM_OUT_CAP - c->out_len;
}

/* Queues the answer to a parser or body error; the framing is lost, so the
 * connection closes after it (lingering: the rest may still be coming). */
static int fail(sp__evm_conn *c, int status)
{
    ssize_t n = sp_http_write_error(c->out + c->out_len, out_room(c), status,
                                    c->srv->date_text);

    if (n > 0)
        c->out_len += (size_t)n;
    c->keep = false;
    c->linger = true;
    return SP__EVM_FAIL;
}

bool sp__evm_timeout_answer(sp__evm_conn *c)
{
    if (!c->in_request)
        return false;
    fail(c, 408);
    c->slow = true; /* a client too slow to send is too slow to drain */
    return true;
}

void sp__evm_arm_io(sp__evm_conn *c)
{
    if (c->cgi && c->cgi->p.pid > 0 && !c->cgi->finished)
        return; /* the script's deadline stays the one that counts */
    sp__evm_arm(c, SP__EVM_T_IO, c->srv->idle_timeout);
}

/* The CGI state and its stdin pipe, made when a request is routed to a
 * script, before its body is read (the body goes into the pipe). */
static sp__evm_cgi *cgi_alloc(const sp__evm_server *s)
{
    sp__evm_cgi *g = malloc(sizeof *g);
    int in[2];

    if (!g)
        return NULL;
    if (pipe2(in, O_CLOEXEC) < 0) {
        free(g);
        return NULL;
    }
    memset(&g->p, 0, sizeof g->p);
    g->p.pidfd = g->p.out_fd = -1;
    g->in_r = in[0];
    g->in_w = in[1];
    fcntl(in[1], F_SETFL, O_NONBLOCK); /* ours only: the script's end blocks */
    g->feed_failed = false;
    g->olen = 0;
    g->eof = g->head_done = g->finished = false;
    (void)s;
    return g;
}

/* Arms the header timer, counted from req_start, unless it already runs:
 * armed once a request, trickled bytes never extend it. */
static void arm_header(sp__evm_conn *c)
{
    const sp__evm_server *s = c->srv;
    int64_t left = c->req_start + s->header_timeout - s->now;

    if (c->timer_for != SP__EVM_T_HEADER)
        sp__evm_arm(c, SP__EVM_T_HEADER, left > 0 ? left : 0);
}

int sp__evm_head(sp__evm_conn *c)
{
    sp__evm_server *s = c->srv;
    ssize_t n;

    if (!c->in_request) {
        if (c->in_end == c->in_start) {
            /* nothing yet: a new connection's first request is on the
             * header timer from the accept (conn.c does the same), a
             * keep-alive one on the idle timer */
            if (c->fresh && s->header_timeout >= 0)
                arm_header(c);
            else if (c->timer_for != SP__EVM_T_IDLE)
                sp__evm_arm(c, SP__EVM_T_IDLE, s->idle_timeout);
            return SP__EVM_AGAIN;
        }
        if (c->in_start >= SP__EVM_COMPACT_AT) {
            /* leaves room for the longest head and a body piece after it */
            memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
            c->in_end -= c->in_start;
            c->in_start = c->in_pos = 0;
        }
        c->in_request = true;
        if (!c->fresh)
            c->req_start = s->now;
        c->fresh = false;
    }
    n = sp_http_parse_request(&c->req, c->in + c->in_start, c->in_end - c->in_start);
    if (n == SP_HTTP_AGAIN) {
        /* Armed only now that the head is incomplete, which spares the
         * timer heap on the usual request that arrives whole. */
        if (s->header_timeout >= 0)
            arm_header(c);
        return SP__EVM_AGAIN;
    }
    if (n < 0)
        return fail(c, (int)-n);
    c->head_len = (size_t)n;
    c->in_pos = c->in_start + (size_t)n;
    c->linger = false;
    sp__evm_arm(c, SP__EVM_T_NONE, -1);
    sp_http_route(&c->req, c->act);
    sp_http_body_init(&c->body, &c->req, &s->limits);
    if (c->act->kind == SP_HTTP_ACT_CGI && s->cs.cgi_dir)
        c->cgi = cgi_alloc(s); /* NULL: sp__evm_cgi_job answers 503 */
    /* RFC 9110 §10.1.1: the client may wait for this before sending a body;
     * needless once body bytes are here */
    if (c->req.expect_continue && c->in_pos == c->in_end &&
        (c->req.body_kind == SP_HTTP_BODY_CHUNKED || c->req.content_length > 0)) {
        /* fits: a request starts with SP__EVM_ANSWER_MAX of room */
        memcpy(c->out + c->out_len, SP_HTTP_CONTINUE, sizeof SP_HTTP_CONTINUE - 1);
        c->out_len += sizeof SP_HTTP_CONTINUE - 1;
    }
    return SP__EVM_OK;
}

/* Puts decoded body bytes into the script's stdin pipe (sp_cgi_feed). */
static void cgi_feed(sp__evm_cgi *g, uint64_t max, const char *p, size_t n)
{
    if (!g->feed_failed && sp_cgi_feed(g->in_w, max, p, n) < 0)
        g->feed_failed = true; /* the user's pipe quota is spent: 503 */
}

int sp__evm_body(sp__evm_conn *c)
{
    while (!sp_http_body_done(&c->body)) {
        const char *data;
        size_t len;
        ssize_t n;

        if (c->in_pos == c->in_end) {
            /* all consumed: read the next piece over the consumed one,
             * keeping the head that the answer still needs */
            c->in_pos = c->in_end = c->in_start + c->head_len;
            sp__evm_arm(c, SP__EVM_T_IO, c->srv->idle_timeout);
            return SP__EVM_AGAIN;
        }
        n = sp_http_body_parse(&c->body, c->in + c->in_pos, c->in_end - c->in_pos,
                               &data, &len);
        if (n < 0)
            return fail(c, (int)-n);
        if (len && c->cgi)
            cgi_feed(c->cgi, c->srv->limits.max_body, data, len);
        c->in_pos += (size_t)n;
    }
    sp__evm_arm(c, SP__EVM_T_NONE, -1);
    return SP__EVM_OK;
}

int sp__evm_reply(sp__evm_conn *c)
{
    bool keep = keep_wish(c);
    ssize_t n = sp_http_write_reply(c->out + c->out_len, out_room(c), &c->req,
                                    c->act, keep, c->srv->date_text);

    if (n < 0)
        return (int)n;
    c->out_len += (size_t)n;
    c->keep = keep && c->req.keep_alive;
    return 0;
}

int sp__evm_reply_status(sp__evm_conn *c, int status)
{
    bool keep = keep_wish(c);
    ssize_t n = sp_http_write_status(c->out + c->out_len, out_room(c), &c->req,
                                     status, NULL, keep, c->srv->date_text);

    if (n < 0)
        return (int)n;
    c->out_len += (size_t)n;
    c->keep = keep && c->req.keep_alive;
    return 0;
}

void sp__evm_next(sp__evm_conn *c)
{
    sp__evm_cgi_release(c);
    c->in_start = c->in_pos;
    if (c->in_start == c->in_end)
        c->in_start = c->in_pos = c->in_end = 0;
    c->in_request = false;
    c->head_len = 0;
}

bool sp__evm_must_close(const sp__evm_conn *c)
{
    return !c->keep;
}

bool sp__evm_wants_linger(const sp__evm_conn *c)
{
    return !c->peer_eof && !c->slow && (c->linger || c->in_end > c->in_pos);
}

void sp__evm_linger(sp__evm_conn *c)
{
    shutdown(c->fd, SHUT_WR); /* our answer, then FIN */
    c->in_start = c->in_pos = c->in_end = 0;
    c->drained = 0;
    sp__evm_arm(c, SP__EVM_T_LINGER, SP__EVM_LINGER_MS * SP__EVM_MS);
}

int sp__evm_drain(sp__evm_conn *c)
{
    while (c->drained < SP__EVM_LINGER_MAX) {
        ssize_t n;

        c->in_end = 0;
        n = sp__evm_read(c);
        if (n > 0) {
            c->drained += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n == 0 || errno != EINTR)
            return 1;
    }
    return 1; /* a client that keeps sending is not worth more */
}

/* ---- static files ----------------------------------------------------------- */

bool sp__evm_static_job(sp__evm_conn *c)
{
    sp__evm_server *s = c->srv;

    if (s->cs.root_fd < 0) {
        sp__evm_reply_status(c, 404);
        return false;
    }
    c->job.kind = SP__EVM_JOB_OPEN;
    c->job.root_fd = s->cs.root_fd;
    c->job.rel = c->act->arg; /* stays put: the request waits for the job */
    c->job.fd = -1;
    return true;
}

void sp__evm_static_opened(sp__evm_conn *c)
{
    sp_http_file_reply fr;
    bool keep = keep_wish(c);
    ssize_t n;

    if (c->job.fd < 0) {
        sp__evm_reply_status(c, sp_http_static_errno_status(c->job.err));
        return;
    }
    n = sp_http_static_head(c->out + c->out_len, out_room(c), &c->req, c->act->arg,
                            c->act->arg_len, &c->job.st, keep, c->srv->date_text,
                            &fr);
    if (n < 0) {
        close(c->job.fd);
        sp__evm_reply_status(c, 500);
        return;
    }
    c->out_len += (size_t)n;
    c->keep = keep && c->req.keep_alive;
    if (fr.length) {
        c->file_fd = c->job.fd;
        c->file_off = fr.offset;
        c->file_left = fr.length;
    } else {
        close(c->job.fd);
    }
}

/* ---- CGI -------------------------------------------------------------------- */

bool sp__evm_cgi_job(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;

    if (!c->srv->cs.cgi_dir) {
        sp__evm_reply_status(c, 404);
        return false;
    }
    if (!g || g->feed_failed) {
        sp__evm_cgi_release(c);
        sp__evm_reply_status(c, 503); /* no memory, pipe or pipe quota */
        return false;
    }
    sp__evm_close_fd(c->srv, g->in_w); /* the script reads EOF after the body */
    g->in_w = -1;
    c->job.kind = SP__EVM_JOB_SPAWN;
    c->job.conn = c;
    return true;
}

bool sp__evm_cgi_spawned(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;
    int err = c->job.err;

    sp__evm_close_fd(c->srv, g->in_r); /* the script has its copy */
    g->in_r = -1;
    if (err) {
        sp__evm_cgi_release(c);
        /* as conn.c: no such script 404, not executable 403, else 500 */
        sp__evm_reply_status(c, err == ENOENT ? 404 : err == EACCES ? 403 : 500);
        return false;
    }
    sp_http_cgi_reply_init(&g->reply);
    sp__evm_arm(c, SP__EVM_T_CGI, SP_CONN_CGI_TIMEOUT_MS * SP__EVM_MS);
    return true;
}

ssize_t sp__evm_cgi_read(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;
    ssize_t n;

    if (g->eof || g->p.out_fd < 0 || g->olen == sizeof g->obuf)
        return 0;
    n = read(g->p.out_fd, g->obuf + g->olen, sizeof g->obuf - g->olen);
    if (n > 0) {
        g->olen += (size_t)n;
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -1;
    g->eof = true; /* EOF, or an error that ends the output all the same */
    return 0;
}

/* The output is over (complete, cut, or not wanted): close the pipes and
 * hand the child to the reaper.  `kill_it` when it must not run on. */
static void cgi_finish(sp__evm_conn *c, bool kill_it)
{
    sp__evm_cgi *g = c->cgi;

    if (g->finished)
        return;
    g->finished = true;
    if (kill_it && g->p.pid > 0)
        kill(g->p.pid, SIGKILL);
    if (g->p.out_fd >= 0)
        sp__evm_close_fd(c->srv, g->p.out_fd);
    if (g->in_w >= 0)
        sp__evm_close_fd(c->srv, g->in_w);
    if (g->in_r >= 0)
        sp__evm_close_fd(c->srv, g->in_r);
    g->p.out_fd = g->in_w = g->in_r = -1;
    sp__evm_child_done(c->srv, &g->p);
    if (c->timer_for == SP__EVM_T_CGI)
        sp__evm_arm(c, SP__EVM_T_NONE, -1);
}

void sp__evm_cgi_release(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;

    if (!g)
        return;
    cgi_finish(c, true);
    free(g);
    c->cgi = NULL;
}

/* A bad or missing CGI head: 502, the request framing is intact. */
static sp__evm_cgi_next cgi_bad_gateway(sp__evm_conn *c, int status)
{
    cgi_finish(c, true);
    sp__evm_reply_status(c, status);
    return SP__EVM_CGI_DONE;
}

static void consume(sp__evm_cgi *g, size_t n)
{
    memmove(g->obuf, g->obuf + n, g->olen - n);
    g->olen -= n;
}

static sp__evm_cgi_next cgi_head(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;
    bool keep = keep_wish(c);
    ssize_t r = sp_http_cgi_parse(&g->reply, g->obuf, g->olen), n;

    if (r == SP_HTTP_AGAIN && !g->eof)
        return SP__EVM_CGI_READ; /* the parser fails past CGI_HEAD_MAX */
    if (r <= 0)
        return cgi_bad_gateway(c, 502); /* bad, or ended inside the head */
    if (c->out_len > 0)
        return SP__EVM_CGI_FLUSH; /* the head may need the whole buffer */
    n = sp_http_cgi_write_head(c->out, SP__EVM_OUT_CAP, &g->reply, g->obuf,
                               &c->req, keep, c->srv->date_text, &g->framing);
    if (n < 0)
        return cgi_bad_gateway(c, 502);
    c->out_len = (size_t)n;
    c->keep = keep && c->req.keep_alive && g->framing != SP_HTTP_FRAME_CLOSE;
    g->head_done = true;
    g->left = g->reply.content_length;
    consume(g, (size_t)r);
    return SP__EVM_CGI_FLUSH;
}

/* Moves script output into the answer with the framing the head chose. */
static void cgi_frame(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;
    sp_http_writer w;
    size_t take = g->olen;

    if (g->framing == SP_HTTP_FRAME_NONE) {
        g->olen = 0; /* HEAD, 204, 304: the body is dropped */
        return;
    }
    /* 32: a chunk's size line and CRLF, and the last chunk */
    if (out_room(c) < 32 + 1)
        return;
    if (take > out_room(c) - 32)
        take = out_room(c) - 32;
    sp_http_writer_init(&w, c->out + c->out_len, out_room(c));
    switch (g->framing) {
    case SP_HTTP_FRAME_NONE:
        break;
    case SP_HTTP_FRAME_LENGTH:
        if (take > g->left)
            take = (size_t)g->left;
        sp_http_put(&w, g->obuf, take);
        g->left -= take;
        if (g->left == 0)
            take = g->olen; /* anything past the length is dropped */
        break;
    case SP_HTTP_FRAME_CHUNKED:
        sp_http_put_chunk_begin(&w, take);
        sp_http_put(&w, g->obuf, take);
        sp_http_put_chunk_end(&w);
        break;
    case SP_HTTP_FRAME_CLOSE:
        sp_http_put(&w, g->obuf, take);
        break;
    }
    c->out_len += w.len;
    consume(g, take);
}

sp__evm_cgi_next sp__evm_cgi_pump(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;
    bool complete;

    if (g->finished)
        return SP__EVM_CGI_DONE;
    if (!g->head_done)
        return cgi_head(c);
    if (g->olen)
        cgi_frame(c);
    complete = (g->framing == SP_HTTP_FRAME_LENGTH && g->left == 0) ||
               (g->eof && g->olen == 0);
    if (!complete)
        return g->olen || c->out_len ? SP__EVM_CGI_FLUSH : SP__EVM_CGI_READ;
    if (g->framing == SP_HTTP_FRAME_CHUNKED) {
        if (out_room(c) < 5)
            return SP__EVM_CGI_FLUSH;
        sp_http_writer w;

        sp_http_writer_init(&w, c->out + c->out_len, out_room(c));
        sp_http_put_last_chunk(&w);
        c->out_len += w.len;
    }
    if (g->framing == SP_HTTP_FRAME_LENGTH && g->left > 0)
        c->keep = false; /* cut short: only the close tells the client */
    cgi_finish(c, false);
    return SP__EVM_CGI_DONE;
}

bool sp__evm_cgi_timeout(sp__evm_conn *c)
{
    sp__evm_cgi *g = c->cgi;

    if (g->head_done)
        return false; /* mid-body: only a close can say the answer is cut */
    cgi_bad_gateway(c, 504);
    return true;
}
