/* evm: what the three single-threaded event-loop models (epoll, callback,
 * stackless) share, so that they differ only in how they wait.
 *
 * Two halves:
 *  - evm_sys.c: the server around a loop: the listener, READY and the stop
 *    (server.h's, shared with every model; an EMFILE reserve of our own), a
 *    timer heap, the helper threads that do the blocking work (open(2) of
 *    static files, spawning CGI scripts with conn.h's sp_cgi_spawn) and wake
 *    the loop through an eventfd, the CGI children to reap, and the
 *    connection free list.
 *  - evm_http.c: one connection's HTTP exchange over its own buffers: sans-I/O
 *    glue between the bytes a model reads and the answers it writes (head,
 *    body, routing, replies, static heads, the CGI output pump), plus the
 *    non-blocking read/write/sendfile primitives every model calls.
 *
 * What stays in each model is the loop itself (epoll_wait and dispatch) and
 * the way a connection's steps are chained: an explicit state machine
 * (epoll.c), continuations (callback.c), stackless coroutines (stackless.c).
 *
 * Threading: everything here belongs to the loop thread, except the job
 * queue of the helper pool (a mutex) and what a job touches while it runs
 * (the job itself, read-only inputs the connection keeps still meanwhile).
 * Internal to spindle; names sp__evm_. */
#ifndef SP_MODELS_EVM_H
#define SP_MODELS_EVM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "models/conn.h"
#include "models/model.h"

/* ---- Sizes and times ----------------------------------------------------- */

/* 16 KiB: room for a CGI head (SP_HTTP_CGI_HEAD_MAX, 8 KiB, plus ours) or
 * about a hundred pipelined hello answers sent with one write. */
#define SP__EVM_OUT_CAP 16384u
/* 1 KiB: the largest answer written without a flush in between (a status
 * page, an error page, a static head); a request starts only with this much
 * room left in the output buffer. */
#define SP__EVM_ANSWER_MAX 1024u
/* 8 KiB: input room beyond the longest head the limits allow, so that a body
 * is read in pieces of at least 4 KiB (see SP__EVM_COMPACT_AT). */
#define SP__EVM_IN_SLACK 8192u
/* 4 KiB: a request that starts this far into the input buffer is moved to
 * its start first; below it the move is not worth its copy. */
#define SP__EVM_COMPACT_AT 4096u
/* 256 KiB a sendfile call, 1 MiB a turn: a client that reads as fast as we
 * send (loopback, another core) never makes sendfile say EAGAIN, and one
 * large file must not hold the loop while other connections wait. */
#define SP__EVM_SENDFILE_CHUNK (256u * 1024u)
#define SP__EVM_SENDFILE_TURN (1024u * 1024u)
/* Lingering close (as conn.c's loop does it): after an error answer, what
 * the client still sends is read and dropped for up to 1 s or 64 KiB, so
 * that our close does not reset the connection before the answer is read
 * (nginx's lingering_close, for the same reason). */
#define SP__EVM_LINGER_MS 1000
#define SP__EVM_LINGER_MAX (64u * 1024)
/* 100 ms without accepting when even the reserve descriptor is gone. */
#define SP__EVM_ACCEPT_PAUSE_MS 100
/* 50 ms between two looks at CGI children that outlived their answer
 * (most exit within microseconds of closing their stdout). */
#define SP__EVM_REAP_MS 50
/* Two helper threads: one may sit on a slow disk or a slow exec while the
 * other serves; the work is rare next to the socket traffic. */
#define SP__EVM_HELPERS 2
/* 512 events per epoll_wait: enough to amortise the call at 10,000
 * connections without a long tail of unprocessed events. */
#define SP__EVM_EVENTS 512

#define SP__EVM_MS 1000000LL /* nanoseconds in a millisecond */

/* ---- Timers: a lazy min-heap ---------------------------------------------
 *
 * A connection has one deadline at a time (header, idle, sleep, CGI, ...);
 * its meaning depends on what the connection is doing.  The heap holds at
 * most one entry per timer, keyed by the deadline it had when pushed.  Moving
 * a deadline later (the common case: every request re-arms the idle timer)
 * only stores it; the stale entry is reordered by its true deadline when it
 * comes up.  Moving it earlier sifts the entry up.  So a keep-alive request
 * costs no heap operation in the usual case. */
typedef struct sp__evm_timer {
    int64_t deadline; /* the true deadline, monotonic ns; -1: none */
    int64_t key;      /* the deadline this entry is ordered by */
    size_t slot;      /* index in the heap + 1; 0: not in the heap */
} sp__evm_timer;

typedef struct sp__evm_heap {
    sp__evm_timer **v;
    size_t n, cap;
} sp__evm_heap;

/* Sets t's deadline (absolute ns, or -1 for none).  Returns 0, or -ENOMEM
 * if the heap could not grow (the timer is then unarmed). */
int sp__evm_timer_set(sp__evm_heap *h, sp__evm_timer *t, int64_t deadline);
/* Takes t out of the heap (before its owner is freed). */
void sp__evm_timer_remove(sp__evm_heap *h, sp__evm_timer *t);
/* The next timer whose deadline is <= now, its deadline cleared (so it
 * fires once), or NULL.  Timers come out in deadline order; stale entries
 * are reordered or dropped on the way. */
sp__evm_timer *sp__evm_timer_expired(sp__evm_heap *h, int64_t now);
/* The smallest key in the heap (maybe stale: early, never late), or -1. */
int64_t sp__evm_timer_next(const sp__evm_heap *h);
void sp__evm_heap_free(sp__evm_heap *h);

/* ---- Helper threads -------------------------------------------------------
 *
 * A job is embedded in its connection: submitting allocates nothing.  The
 * loop learns of finished jobs through pool.efd (an eventfd it watches for
 * input) and takes them with sp__evm_pool_done(). */
typedef enum sp__evm_job_kind {
    SP__EVM_JOB_OPEN,  /* sp_http_static_open(root_fd, rel) */
    SP__EVM_JOB_SPAWN, /* sp_cgi_spawn(): posix_spawn waits for the exec */
} sp__evm_job_kind;

typedef struct sp__evm_job {
    struct sp__evm_job *next;
    sp__evm_job_kind kind;
    /* in: OPEN */
    int root_fd;
    const char *rel;
    /* in: SPAWN (the connection's request, action and peer stay put) */
    struct sp__evm_conn *conn;
    /* out */
    int fd;         /* OPEN: the file, or -1 */
    int err;        /* errno of a failure, else 0 */
    struct stat st; /* OPEN */
} sp__evm_job;

typedef struct sp__evm_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sp__evm_job *todo, *todo_tail; /* FIFO */
    sp__evm_job *done;             /* LIFO; sp__evm_pool_done reverses it */
    pthread_t th[SP__EVM_HELPERS];
    int nthreads;
    int efd; /* eventfd: readable when `done` is not empty */
    bool stop;
} sp__evm_pool;

/* ---- CGI ------------------------------------------------------------------ */

/* One CGI request's state: allocated when the request is routed to a script
 * (a process spawn dwarfs a malloc; the hot path never comes here).  As in
 * conn.c, the request body goes into the script's stdin pipe before the
 * script starts (the pipe grows to hold it): CONTENT_LENGTH is known for a
 * chunked body too, and a script that writes before it reads cannot
 * deadlock against us. */
typedef struct sp__evm_cgi {
    sp_cgi_proc p;    /* pid 0 until spawned; out_fd -1 once closed */
    int in_r, in_w;   /* the stdin pipe; in_w O_NONBLOCK; -1 closed */
    bool feed_failed; /* the body did not fit in the pipe: 503 */
    /* the script's output not yet turned into answer bytes */
    char obuf[SP__EVM_OUT_CAP];
    size_t olen;
    bool eof;         /* stdout reached EOF */
    bool head_done;   /* our answer head is written */
    bool finished;    /* pipes closed, child handed to the reaper */
    sp_http_cgi_reply reply;
    sp_http_framing framing;
    uint64_t left;    /* FRAME_LENGTH: body bytes still to pass on */
} sp__evm_cgi;

/* What sp__evm_cgi_pump() wants next. */
typedef enum sp__evm_cgi_next {
    SP__EVM_CGI_READ,  /* more script output (read out_fd, wait for it) */
    SP__EVM_CGI_FLUSH, /* answer bytes are in the output buffer: write them,
                        * then pump again */
    SP__EVM_CGI_DONE,  /* the answer is complete (flush what is left) */
} sp__evm_cgi_next;

/* ---- The server ----------------------------------------------------------- */

typedef struct sp__evm_conn sp__evm_conn;

typedef struct sp__evm_server {
    const sp_server_opts *o;
    const char *model;       /* for READY */
    sp_http_limits limits;   /* o->limits with zeros replaced by defaults */
    int64_t header_timeout;  /* ns; -1: none */
    int64_t idle_timeout;    /* ns; -1: none */
    int listen_fd;           /* -1 once closed */
    int port;
    int spare_fd;            /* reserve for EMFILE (libuv's trick) */
    int stop_fd;             /* server.h's: readable once a stop is asked */
    sp_conn_server cs;       /* conn.h's: --root (cs.root_fd), --cgi-dir */
    bool cs_ready;
    sp__evm_pool pool;
    int epfd;                /* the model's epoll set (see `spawning`) */
    /* Spawn jobs queued or running.  While one is, a child may hold a copy
     * of our descriptor table between its clone and its exec, and a
     * descriptor we close stays registered in epoll until then: closes
     * take it out of the set first (EPOLL_CTL_DEL), which is otherwise a
     * syscall we spare. */
    int spawning;
    sp__evm_heap timers;
    sp_http_date_cache date;
    int64_t now;             /* monotonic ns, refreshed once a loop turn */
    const char *date_text;   /* the Date value for now */
    bool stopping;           /* SIGTERM/SIGINT seen */
    int64_t accept_resume;   /* when a paused listener is retried; -1 */
    bool accept_paused;
    /* connections: the model's struct each, nothing else */
    size_t model_size, in_cap;
    sp__evm_conn *free_list;
    /* I/O buffers, one block each, [in | out | headers | action], lent
     * to a connection while it has a request or an answer in hand and
     * taken back when it goes idle (sp__evm_io_put).  A stack (LIFO): the
     * block a connection gets is the one last given back, still in cache,
     * so ten thousand keep-alive connections touch the buffers of the few
     * that are busy at once instead of 44 KiB each (nginx lends its header
     * buffers the same way).  Unbounded: one thread, and every block it
     * keeps served a connection at once. */
    size_t io_out_off, io_hdr_off, io_act_off, io_size;
    sp_conn_io_pool io;
    sp__evm_conn *live;      /* every open connection (shutdown walks it) */
    sp__evm_conn *dead;      /* closed this loop turn; freed after it */
    size_t nlive;
    uint64_t next_id;
    /* CGI children that outlived their answer, looked at every REAP_MS */
    sp_cgi_proc *children;
    size_t nchildren, children_cap;
    int64_t reap_at;
} sp__evm_server;

/* What a connection's deadline means when it passes. */
typedef enum sp__evm_timer_for {
    SP__EVM_T_NONE = 0,
    SP__EVM_T_IDLE,   /* keep-alive with no request: close quietly */
    SP__EVM_T_HEADER, /* the head is not complete: sp__evm_timeout_answer() */
    SP__EVM_T_IO,     /* a body read or an answer write made no progress */
    SP__EVM_T_SLEEP,  /* /sleep is over: answer */
    SP__EVM_T_CGI,    /* the script ran too long: sp__evm_cgi_timeout() */
    SP__EVM_T_LINGER, /* lingering close is over: close */
} sp__evm_timer_for;

/* The part of a connection every model shares: the model's own struct
 * begins with it. */
struct sp__evm_conn {
    sp__evm_server *srv;
    int fd;                  /* the socket; -1 once closed */
    uint64_t id;             /* unique per accept: a queue entry made for
                              * an earlier owner of the block is stale */
    sp__evm_timer timer;
    sp__evm_timer_for timer_for;
    sp__evm_conn *next, *prev; /* live list; `next` alone on free/dead lists */
    /* input: [in_start, in_pos) is the current request's head and consumed
     * body, [in_pos, in_end) is unread by the parser.  `in` and `out` are
     * the server's lent I/O block, NULL while the connection holds none
     * (idle: nothing buffered, nothing to write, nothing in flight). */
    char *in;
    size_t in_start, in_pos, in_end;
    /* output: [out_off, out_len) is still to write */
    char *out;
    size_t out_off, out_len;
    sp_http_request req;     /* its headers are in the lent block */
    sp_http_body body;
    sp_http_action *act;     /* routed: in the lent block, NULL with it */
    size_t head_len;
    bool in_request;         /* bytes of the current request have arrived */
    bool fresh;              /* no request yet: the header timer runs from
                              * the accept (a silent client is a slow one) */
    int64_t req_start;       /* when the header timer started (monotonic ns) */
    bool keep;               /* the connection stays open after this answer */
    bool linger;             /* unread input may follow: drain before close */
    bool slow;               /* timed out mid-head: close without lingering */
    bool peer_eof;           /* the peer shut its side (read returned 0) */
    bool rd_ready, wr_ready; /* last known readiness (see sp__evm_read) */
    bool rdhup;              /* EPOLLRDHUP seen: a short read is no proof
                              * the socket is drained, EOF may be next */
    bool job_busy;           /* a helper thread owns `job` right now */
    size_t drained;          /* bytes dropped by the lingering close */
    /* static file being sent */
    int file_fd;
    uint64_t file_off, file_left;
    sp__evm_job job;
    sp__evm_cgi *cgi;
    struct sockaddr_storage peer;
};

/* Results of the exchange steps. */
#define SP__EVM_AGAIN 0 /* more input needed */
#define SP__EVM_OK 1    /* the step is done */
#define SP__EVM_FAIL 2  /* an error answer is queued; close after it */

/* Sets up everything but the loop: normalised options, the stop (server.h:
 * installed here if `spindle serve` has not), the listener, --root and
 * --cgi-dir, the helper pool; `model_size` is the size of the model's
 * connection struct (which begins with sp__evm_conn).  Does not print READY
 * (the model does, once its loop watches the listener).  Returns 0, or -1
 * with a message on stderr (`spindle serve` then exits 1). */
int sp__evm_server_init(sp__evm_server *s, const sp_server_opts *o,
                        const char *model, size_t model_size);
/* Undoes sp__evm_server_init (closing what connections are left). */
void sp__evm_server_fini(sp__evm_server *s);
/* "READY <port> <model>" on stdout, flushed (sp_server_ready). */
void sp__evm_ready(const sp__evm_server *s);
/* Refreshes s->now and the Date text, and reaps CGI children when due;
 * call once per loop turn, after the wait. */
void sp__evm_tick(sp__evm_server *s);
/* The epoll_wait timeout for the nearest deadline: ms, rounded up; -1. */
int sp__evm_wait_ms(const sp__evm_server *s);

/* Accepts one connection and sets it up (TCP_NODELAY, its block, the live
 * list).  Returns it, or NULL with errno: EAGAIN when none is pending;
 * EINTR when one was shed for lack of descriptors or failed (call again);
 * EMFILE when the listener must pause (the model removes it from its poll
 * set and calls sp__evm_accept_pause()). */
sp__evm_conn *sp__evm_accept(sp__evm_server *s);
/* Marks the listener paused for SP__EVM_ACCEPT_PAUSE_MS; the model takes it
 * out of its epoll set and puts it back when sp__evm_accept_due() says. */
void sp__evm_accept_pause(sp__evm_server *s);
bool sp__evm_accept_due(sp__evm_server *s);
/* Call when s->stop_fd is readable (models watch it edge-triggered and
 * never read it: other processes may watch the same pipe).  Returns true
 * the first time a stop is seen, and sets s->stopping. */
bool sp__evm_stop_seen(sp__evm_server *s);
/* Closes fd, taking it out of the epoll set first while a spawn runs. */
void sp__evm_close_fd(sp__evm_server *s, int fd);
/* A CGI child whose answer is over: reaps it now, or on a later turn. */
void sp__evm_child_done(sp__evm_server *s, sp_cgi_proc *p);
/* Closes the listener (the model has removed it from its poll set). */
void sp__evm_stop_listening(sp__evm_server *s);

/* Closes a connection: its socket, file, CGI (the child is killed unless it
 * is done, and reaped later), and its timer.  The block stays on the dead
 * list until sp__evm_free_dead(), so that events already returned for it in
 * this turn find fd == -1 instead of a new owner; a block whose job a helper
 * still holds is freed when the job comes back. */
void sp__evm_close(sp__evm_conn *c);
/* Returns this turn's dead blocks to the free list. */
void sp__evm_free_dead(sp__evm_server *s);
/* Takes the finished jobs off the pool (call when pool.efd is readable);
 * a job whose connection was closed meanwhile is cleaned up and skipped. */
sp__evm_job *sp__evm_pool_done(sp__evm_server *s);
/* Hands c->job (filled by sp__evm_static_job / sp__evm_cgi_job) to a
 * helper thread. */
void sp__evm_submit(sp__evm_conn *c);

/* Lends c an I/O block if it holds none (the read does it itself).
 * Returns 0, or -1 with errno ENOMEM. */
int sp__evm_io_get(sp__evm_conn *c);
/* Gives c's I/O block back if c is idle (sp__evm_idle) and holds one;
 * sp__evm_flush and sp__evm_close call it. */
void sp__evm_io_put(sp__evm_conn *c);

/* Sets the connection's one deadline, `ns` from now (-1: none), and what it
 * is for; the model reads c->timer_for when it expires. */
void sp__evm_arm(sp__evm_conn *c, sp__evm_timer_for what, int64_t ns);

/* ---- The exchange (evm_http.c) ------------------------------------------- */

/* Reads from the socket into the input buffer (lent first if c holds
 * none).  Returns the bytes read, 0 at EOF (peer_eof set), or -1 with errno
 * (EAGAIN: rd_ready cleared; ENOMEM: no I/O block).
 * A short read also clears rd_ready: on a stream socket it means the receive
 * queue was emptied, and new data raises a new edge (unless rdhup: then EOF
 * may be waiting without a further edge). */
ssize_t sp__evm_read(sp__evm_conn *c);
/* Writes [out_off, out_len).  Returns 1 when all is written (and gives
 * the I/O block back if c is now idle), 0 on EAGAIN (wr_ready cleared), -1
 * on an error (the connection is lost). */
int sp__evm_flush(sp__evm_conn *c);
/* Sends the next pieces of the static file, up to SP__EVM_SENDFILE_TURN.
 * Returns 1 when the file is sent (and closed), 0 on EAGAIN (wr_ready
 * cleared), 2 when the turn's share is sent and the socket may take more
 * (no event will say so: the model continues on a later turn), -1 when the
 * connection is lost. */
int sp__evm_sendfile(sp__evm_conn *c);
/* True when the output buffer lacks room for another answer. */
bool sp__evm_out_full(const sp__evm_conn *c);
/* True when the connection waits for a request with nothing buffered and
 * nothing in flight: shutdown may close it at once. */
bool sp__evm_idle(const sp__evm_conn *c);

/* Parses the head from the buffered bytes.  Arms the header deadline when a
 * request's first bytes are seen (once a request), the idle deadline when
 * nothing is buffered.  SP__EVM_OK: routed, body decoder ready, a 100 Continue
 * queued if asked for; SP__EVM_FAIL: error page queued, keep false. */
int sp__evm_head(sp__evm_conn *c);
/* Consumes body bytes (kept for CGI, else dropped).  Same returns. */
int sp__evm_body(sp__evm_conn *c);
/* Queues the answer of a RESPOND action, or of a SLEEP action that has
 * slept.  Returns 0, or -ENOBUFS (never with ANSWER_MAX room). */
int sp__evm_reply(sp__evm_conn *c);
/* Queues a status page for the current request (a failed open, a CGI
 * script that could not run); keeps the connection when allowed. */
int sp__evm_reply_status(sp__evm_conn *c, int status);
/* The answer of the current request is queued in full (static file and CGI
 * output included): forget the request; the next one starts at in_pos. */
void sp__evm_next(sp__evm_conn *c);
/* True when a next request's bytes are already buffered. */
bool sp__evm_buffered(const sp__evm_conn *c);
/* At the end of an answer: true when the connection must close (after its
 * output is flushed). */
bool sp__evm_must_close(const sp__evm_conn *c);
/* When closing: true when the peer may still be sending (an error cut its
 * request short, or unread bytes are buffered), so that a plain close would
 * answer them with a reset that can destroy our last answer in flight. */
bool sp__evm_wants_linger(const sp__evm_conn *c);
/* Starts a lingering close: shuts our side and arms SP__EVM_LINGER_MS; the
 * model then reads with sp__evm_drain() until it returns 1, and closes. */
void sp__evm_linger(sp__evm_conn *c);
/* Reads and drops input.  Returns 1 at EOF or on an error, 0 on EAGAIN. */
int sp__evm_drain(sp__evm_conn *c);

/* STATIC: fills c->job for the open (returns true), or queues 404 at once
 * when there is no --root (returns false). */
bool sp__evm_static_job(sp__evm_conn *c);
/* After the job: queues the head (or the error page); the file, if any,
 * is c->file_fd with file_left bytes to sendfile after the head. */
void sp__evm_static_opened(sp__evm_conn *c);

/* CGI, once the body is in the stdin pipe: fills c->job for the spawn
 * (returns true), or queues the error answer (no --cgi-dir: 404; no memory
 * or pipe: 503, as conn.c) and returns false. */
bool sp__evm_cgi_job(sp__evm_conn *c);
/* After the job: true when the script runs (cgi->p.out_fd to watch), false
 * when an error answer was queued instead (404, 403, 500). */
bool sp__evm_cgi_spawned(sp__evm_conn *c);
/* Reads script output.  Returns > 0 bytes, 0 at EOF (or when the pump wants
 * no more), -1 on EAGAIN. */
ssize_t sp__evm_cgi_read(sp__evm_conn *c);
/* Turns buffered script output into answer bytes (sans-I/O; see
 * sp__evm_cgi_next).  At DONE the script's pipes are closed and the child
 * is reaped or queued for reaping. */
sp__evm_cgi_next sp__evm_cgi_pump(sp__evm_conn *c);
/* The script ran past SP_CONN_CGI_TIMEOUT_MS (conn.h) and is killed: 504 if
 * nothing was answered yet (returns true: the pump is DONE), else false
 * (close: only a close can say the body is cut). */
bool sp__evm_cgi_timeout(sp__evm_conn *c);
/* The header timer passed.  Queues 408 and returns true when part of a
 * head had arrived (the connection closes after it, without lingering: a
 * slow client is slow to read too); returns false when none had (close
 * quietly). */
bool sp__evm_timeout_answer(sp__evm_conn *c);
/* Arms the timer for a blocked write or sendfile: idle_timeout of no
 * progress, except while a CGI script runs (its own limit covers it). */
void sp__evm_arm_io(sp__evm_conn *c);
/* Releases the CGI state (kills the child if it runs). */
void sp__evm_cgi_release(sp__evm_conn *c);

#endif
