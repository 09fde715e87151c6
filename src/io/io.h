/* The io layer's per-thread state: the poller, the descriptor table, and
 * the queue through which other threads (the offload pool) wake coroutines.
 * Internal. */
#ifndef SP_IO_H
#define SP_IO_H

#include <pthread.h>

#include "core/internal.h"
#include "poll/poll.h"

/* One coroutine waiting on one direction of one descriptor.  From the
 * thread's allocator, never on a stack (shared stacks move). */
typedef struct sp__waiter {
    struct sp__waiter *next, *prev; /* in the descriptor's list */
    struct sp__waiter *sibling;     /* the other waiters of the same wait */
    sp_co *co;
    int fd;
    uint8_t dir;                    /* 0 read, 1 write */
} sp__waiter;

typedef struct sp__wlist {
    sp__waiter *head, *tail;
} sp__wlist;

typedef struct sp__fdstate {
    sp__wlist wl[2];            /* waiting to read [0], to write [1]: FIFO */
    uint32_t gen;               /* bumped by sp_close: stale events die */
    uint8_t registered;         /* in the poller */
    uint8_t interest;           /* level-triggered: SP__EV_* watched */
    uint8_t nonblock;           /* O_NONBLOCK known to be set */
    /* SP__EV_IN/OUT: may be ready, so the call is worth trying.  Set by
     * events, and for descriptors of unknown state; cleared by EAGAIN, and,
     * where short_means_drained, by a short read or write.  A call whose bit is clear parks without the
     * system call that would only say EAGAIN: edge-triggered epoll and
     * io_uring polls report any data that arrives after that. */
    uint8_t ready;
    /* A short read or write means drained or full: true for stream sockets
     * we created or accepted, on epoll only.  epoll computes the event mask
     * when it hands the event over and re-queues on any later wake-up; an
     * io_uring multishot poll was seen to report data and a FIN that
     * followed it as one POLLIN completion and nothing after, so there only
     * EAGAIN clears a ready bit. */
    uint8_t short_means_drained;
    uint8_t stream;             /* a SOCK_STREAM socket we created or accepted */
    /* The peer closed its side: the last data and the FIN can come in one
     * edge, and no edge follows, so a short read no longer means "wait":
     * reads stay ready (they return the EOF). */
    uint8_t hup;
} sp__fdstate;

typedef struct sp__offload_job sp__offload_job;

typedef struct sp__io {
    sp__poller poller;
    sp__fdstate *fds;
    size_t nfds;
    pthread_mutex_t lock;           /* guards `done` (other threads push) */
    sp__offload_job *done;          /* finished jobs to hand back */
    int fell_back;                  /* io_uring refused with this errno */
    int jobs_out;                   /* offload jobs not handed back (lock) */
} sp__io;

/* The calling thread's io state, made (and the poll hook installed) on first
 * use.  NULL with errno set if the poller cannot be opened.  Inline: every
 * socket call asks, and all but the thread's first find it made. */
sp__io *sp__io_open(sp_sched *s);
static inline sp__io *sp__io_get(sp_sched *s)
{
    if (sp__likely(s->poll_ctx != NULL))
        return (sp__io *)s->poll_ctx;
    return sp__io_open(s);
}

/* The state of fd, growing the table as needed (NULL: ENOMEM, or fd < 0).
 * Inline for the same reason: the table is grown once per new highest
 * descriptor, and looked up several times per request. */
sp__fdstate *sp__fd_grow(sp__io *io, int fd);
static inline sp__fdstate *sp__fd(sp__io *io, int fd)
{
    if (sp__likely((size_t)fd < io->nfds)) /* fd < 0 wraps: not taken */
        return &io->fds[fd];
    return sp__fd_grow(io, fd);
}

/* Parks until fd is ready for any of ev (SP__EV_IN, SP__EV_OUT) or the
 * deadline.  Called after the operation returned EAGAIN.  Returns 0 or a
 * positive errno (ETIMEDOUT, ECANCELED, EBADF, ENOMEM). */
int sp__fd_wait(sp_sched *s, int fd, unsigned ev, int64_t deadline);

/* The same for several descriptors (the hook library's poll): parks until
 * one of them is ready for what is asked of it.  Returns as above. */
typedef struct sp__fdwant {
    int fd;
    unsigned ev;
} sp__fdwant;
int sp__fd_wait_many(sp_sched *s, const sp__fdwant *w, int n, int64_t deadline);
/* M:N: moves the calling coroutine to the worker that owns fd, making this
 * worker the owner if nobody is (a descriptor's waiters, ready bits and
 * poller registration live in its owner's table).  Updates *s.  Returns 0,
 * or -EXDEV for a pinned coroutine and a descriptor of another worker. */
int sp__fd_home(sp_sched **s, int fd);
/* Ensures O_NONBLOCK on fd; 0 or -errno. */
int sp__fd_nonblock(sp_sched *s, int fd);
/* A descriptor fresh from socket/accept: forget whatever an older
 * descriptor of the same number left in the table. */
void sp__fd_fresh(sp_sched *s, int fd, int nonblock, int stream);

/* On the scheduler's thread: hands the finished jobs back (offload.c). */
void sp__offload_complete(sp_sched *s, sp__offload_job *job);

/* 1 if [p, p+len) lies on the thread's shared run stack, where memory that
 * another thread or the kernel writes while the owner is parked would land
 * in another coroutine's frames. */
static inline int sp__on_run_stack(sp_sched *s, const void *p, size_t len)
{
    const char *b = s->shared_stack.base;
    return b && (const char *)p + len > b && (const char *)p < b + s->shared_stack.size;
}

#endif
