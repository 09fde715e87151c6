/* One HTTP/1.1 connection, served in blocking style: the loop every model
 * that has a stack to block on shares (fork, prefork, thread, pool with
 * plain system calls; coro, uring, reuseport, mn with spindle's coroutine
 * calls).  The loop is written once; a model picks how it waits by the
 * sp_conn_ops it gives the server.  Internal to src/models.
 *
 *     sp_conn_server srv;                       // one per server
 *     sp_conn_server_init(&srv, opts, &sp_conn_ops_blocking, port);
 *     sp_conn *c = sp_conn_new(&srv);           // or from the model's pool
 *     sp_conn_start(c, fd, peer, peer_len, NULL);
 *     sp_conn_serve(c);                         // returns when fd is closed
 *     sp_conn_free(c);
 *
 * What the loop does for each request: reads the head (the header timeout
 * armed once, at its first byte, or at the accept for a connection's first
 * request; the idle timeout between requests), routes
 * it (sp_http_route), reads or discards the body, acts (hello, sleep,
 * static file, CGI), answers, and parses the next request from the bytes
 * left over (pipelining: answers in order, batched into one write while
 * more requests are already buffered).  Limits and framing errors get their
 * status (400, 413, 414, 431, 501, 505) and the connection closes.  Once
 * sp_server_stopping(): an idle connection closes, a request in flight is
 * finished and answered "Connection: close", and requests already buffered
 * behind it are answered too.
 *
 * The CGI helpers at the end (spawn, reap) also serve event-driven models,
 * which cannot use the loop itself.
 */
#ifndef SP_MODELS_CONN_H
#define SP_MODELS_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "models/model.h"

/* Room in the input buffer beyond the largest head the limits allow: body
 * bytes and the start of the next pipelined request land there. */
#define SP_CONN_IN_SLACK 4096u
/* The output buffer holds a whole response head: the largest is a CGI head
 * (the script's fields, up to SP_HTTP_CGI_HEAD_MAX) plus our status line,
 * Date, Server and framing fields. */
#define SP_CONN_OUT_CAP (SP_HTTP_CGI_HEAD_MAX + 1024u)
/* 30 s: a CGI script that has not finished by then is killed (504 if it
 * had not answered yet); scripts here are short. */
#define SP_CONN_CGI_TIMEOUT_MS 30000

typedef struct sp_conn sp_conn;
typedef struct sp_conn_server sp_conn_server;

/* How a model waits.  Each mirrors its system call (-1 and errno;
 * ETIMEDOUT when the absolute monotonic deadline passes, -1 none).  They
 * may block the thread (blocking models) or park the coroutine. */
typedef struct sp_conn_ops {
    const char *name;
    /* read(2) on the connection or a CGI pipe.  While c->idle (no byte of a
     * next request yet) it also ends, with ECANCELED, when a stop is asked
     * or, for models with sp_conn_server.busy, when others wait. */
    ssize_t (*read)(sp_conn *c, int fd, void *buf, size_t len, int64_t deadline);
    /* writev(2) of at least one byte. */
    ssize_t (*writev)(sp_conn *c, int fd, const struct iovec *iov, int n,
                      int64_t deadline);
    /* sendfile(2) from a regular file to the connection. */
    ssize_t (*sendfile)(sp_conn *c, int in_fd, off_t *off, size_t n,
                        int64_t deadline);
    /* Sleeps until the deadline (the /sleep route). 0 or -1. */
    int (*sleep_until)(sp_conn *c, int64_t deadline);
    /* sp_http_static_open(root, c's STATIC path, &c->st) where blocking is
     * allowed: directly on a thread, on the offload pool in a coroutine. */
    int (*static_open)(sp_conn *c);
    /* Waits until fd is readable (a CGI child's pidfd): 0 or -1. */
    int (*wait_readable)(sp_conn *c, int fd, int64_t deadline);
    /* close(2); sp_close() in coroutine models, so that the runtime's
     * descriptor table forgets the number before it is reused. */
    int (*close)(int fd);
    /* Optional, both or neither: connections then hold an I/O block only
     * while they have a request or an answer in hand (see sp_conn_io_pool).
     * io_pool gives the calling thread's stack of blocks.  wait_idle waits
     * while c->idle, holding no buffer, until fd may be readable: 0, or -1
     * with errno (ETIMEDOUT at the deadline, which still lets what is
     * there be read; ECANCELED).  A stop asked of c while it waits, or
     * a wait that begins after the stop, returns 0 at once, as the idle
     * read returns what is there. */
    struct sp_conn_io_pool *(*io_pool)(sp_conn *c);
    int (*wait_idle)(sp_conn *c, int fd, int64_t deadline);
} sp_conn_ops;

/* A stack (LIFO) of I/O blocks, [in | out | headers | action] each, lent to
 * connections while they have a request or an answer in hand and taken
 * back when they go idle.  The block a connection gets is the one given
 * back last, still in cache, so ten thousand keep-alive connections touch
 * the buffers of the few busy at once instead of 32 KiB each (nginx lends
 * its buffers alike, and so do the event-loop models, with one pool a
 * server).  One per thread: no lock.  A block may go back to another
 * thread's stack than the one it came from (a coroutine moved between M:N
 * workers); each keeps at most SP_CONN_IO_KEEP.  Under ASan a block on a
 * stack is poisoned but for its link: a connection that used its block
 * after giving it back is reported. */
typedef struct sp_conn_io_pool {
    void *free;   /* the blocks, linked through their first word */
    size_t kept;  /* on `free` */
} sp_conn_io_pool;
/* 256 blocks of ~32 KiB: more than a thread has in hand at once outside a
 * burst of slow static files, and a burst gives the rest back. */
#define SP_CONN_IO_KEEP 256u

/* The block given back last, or a new one of `size` bytes (64-aligned).
 * NULL with errno ENOMEM. */
void *sp_conn_io_take(sp_conn_io_pool *pool, size_t size);
/* Gives `block` (of `size` bytes, as taken) back: kept on top of pool
 * while it holds fewer than `keep` blocks, freed otherwise. */
void sp_conn_io_give(sp_conn_io_pool *pool, void *block, size_t size, size_t keep);
/* Frees the blocks on `pool` (its threads are done). */
void sp_conn_io_pool_drain(sp_conn_io_pool *pool);

/* Plain system calls: non-blocking descriptors, poll() on EAGAIN (with the
 * stop descriptor while idle), clock_nanosleep, blocking file calls. */
extern const sp_conn_ops sp_conn_ops_blocking;
/* spindle's sp_read/sp_writev/sp_sendfile/sp_sleep_until/sp_offload/
 * sp_wait_fd/sp_close: the calling thread must run a spindle scheduler.  A
 * stop does not wake an idle read by itself here: the model calls
 * sp_conn_stop_idle() on its idle connections (coroutines cannot poll two
 * descriptors at once, and a cancel could lose a request that was read). */
extern const sp_conn_ops sp_conn_ops_coro;

/* What a server's connections share.  Filled by sp_conn_server_init;
 * `busy` and `busy_arg` are the model's to set. */
struct sp_conn_server {
    const sp_server_opts *opts;
    const sp_conn_ops *ops;
    int port;              /* the bound port (CGI SERVER_PORT) */
    int root_fd;           /* --root opened O_PATH, or -1 (404) */
    char *cgi_dir;         /* realpath of --cgi-dir, or NULL (404) */
    size_t head_max;       /* the largest head the limits let through */
    size_t in_cap;         /* each connection's input buffer */
    /* An I/O block: in[in_cap], then out[SP_CONN_OUT_CAP] at io_out_off,
     * hdr_max parsed headers at io_hdr_off, the routed action at
     * io_act_off: what a request needs only while it is in hand. */
    size_t io_size;
    size_t io_out_off, io_hdr_off, io_act_off;
    size_t hdr_max;
    /* Models whose workers each hold one connection (prefork, pool) set it:
     * true while connections wait for a worker.  The loop then answers
     * with "Connection: close" and ends idle keep-alive waits, so a worker
     * is not held by an idle client while others queue (Apache's prefork
     * answer to the same problem is a keep-alive timeout of seconds). */
    bool (*busy)(sp_conn_server *srv);
    void *busy_arg;
};

/* Opens --root and resolves --cgi-dir of `o` (which must outlive srv).
 * Returns 0, or -errno naming the directory that failed (ENOTDIR, ENOENT,
 * EACCES). */
int sp_conn_server_init(sp_conn_server *srv, const sp_server_opts *o,
                        const sp_conn_ops *ops, int port);
void sp_conn_server_destroy(sp_conn_server *srv);

/* A connection.  The public part is for the models; the rest is the
 * loop's.  Where the model lends no I/O block it is large (its own block,
 * sized by the limits, lives after it, so nothing is allocated per
 * request): allocate it with sp_conn_new(), never on a coroutine's stack.
 * Pages not touched are never faulted in. */
struct sp_conn {
    /* The model's: links for its lists (a free list, the live connections)
     * and whatever it hangs on a connection (its coroutine, its thread). */
    sp_conn *next, *prev;
    void *owner;
    int64_t idle_until;        /* the model's: when its idle read expires */
    uint8_t idle_flags;        /* the model's: how that read is timed */
    /* Set by sp_conn_start. */
    sp_conn_server *srv;
    int fd;                    /* -1 once closed */
    bool idle;                 /* waiting for a request, nothing buffered */
    socklen_t peer_len;
    struct sockaddr_storage peer;
    sp_http_date_cache *date;  /* the thread's, or own_date */
    sp_http_date_cache own_date;

    /* ---- private to conn.c ---- */
    size_t len;                /* valid bytes in in[] */
    size_t start;              /* where the current request starts */
    size_t out_len;            /* answered but not yet written */
    uint32_t requests;         /* requests read on this connection */
    int64_t first_deadline;    /* header deadline of the first request */
    int job_err;               /* the offloaded open's errno */
    struct stat st;            /* the static file being sent */
    sp_http_request req;       /* its headers are in the I/O block */
    sp_http_body body;
    /* The I/O block (sp_conn_server says what it holds): after the struct,
     * or lent (NULL while idle: nothing buffered, nothing to write, no
     * request in hand), and the routed action in it. */
    char *in, *out;
    sp_http_action *act;
};

/* A connection for srv: malloc, not zeroed (its buffers stay untouched
 * until used), with its buffers inside unless srv's ops lend them.  NULL
 * with errno ENOMEM. */
sp_conn *sp_conn_new(sp_conn_server *srv);
void sp_conn_free(sp_conn *c);

/* Makes c serve the accepted socket fd (non-blocking, close-on-exec).  The
 * Date header comes from `date` when not NULL (one cache per thread, as
 * the header wants), else from c's own.  Sets TCP_NODELAY: each answer is
 * one write, and Nagle would hold a head back behind a delayed ACK. */
void sp_conn_start(sp_conn *c, int fd, const struct sockaddr *peer,
                   socklen_t peer_len, sp_http_date_cache *date);

/* Serves c until the peer leaves, a timeout, an error or a stop; closes
 * the socket (c->fd is -1 after).  May block or park for long. */
void sp_conn_serve(sp_conn *c);

/* For coroutine models at a stop: if c is idle, ends its wait (its read
 * sees end-of-file: shutdown(SHUT_RD), which wakes the reader without
 * closing a descriptor under it).  Returns true if it did. */
bool sp_conn_stop_idle(sp_conn *c);

/* ---- CGI processes (RFC 3875), for any model ---- */

typedef struct sp_cgi_proc {
    pid_t pid;
    int pidfd;   /* readable once the script exits; -1 without pidfd_open */
    int out_fd;  /* the script's stdout: ours to read, O_NONBLOCK, CLOEXEC */
} sp_cgi_proc;

/* Starts the script of `act` (a CGI action routed from `req`) in
 * srv->cgi_dir with posix_spawn (vfork and exec: no copy of a large
 * server's page tables, safe from threads and coroutines), the CGI
 * environment of sp_http_cgi_env plus PATH and SCRIPT_FILENAME, stdin from
 * `stdin_fd` (the read end of a pipe holding the body, or -1 for
 * /dev/null), its stderr ours, default signal dispositions and an empty
 * signal mask.  content_length: the body's length, -1 without one.  Does
 * not block on the script.  Returns 0, or -errno: ENOENT (no such script:
 * 404), EACCES (not executable: 403), ENOBUFS (environment too large),
 * others (500). */
int sp_cgi_spawn(const sp_conn_server *srv, const sp_http_request *req,
                 const sp_http_action *act, const struct sockaddr *peer,
                 int64_t content_length, int stdin_fd, sp_cgi_proc *p);

/* Reaps p's process if it has exited; with `kill_it` it first sends it
 * SIGKILL.  Returns 1 when reaped (p->pid is then 0), 0 while it runs, -1
 * with errno on error.  Does not close out_fd or pidfd. */
/* Writes a request body's bytes into a CGI script's stdin pipe before the
 * script runs (nobody reads it yet, so a full pipe is grown with
 * F_SETPIPE_SZ up to max bytes instead of waited on).  Returns 0, or -1
 * when the kernel refuses to grow it (the user's pipe quota is spent). */
int sp_cgi_feed(int fd, uint64_t max, const char *p, size_t n);
int sp_cgi_reap(sp_cgi_proc *p, bool kill_it);

#endif
