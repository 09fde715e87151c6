/* The poller interface (layer "poll"): one small struct of operations, one
 * file per backend, in the manner of redis's ae_*.c.  Adding a backend means
 * a file and a line in poller.c's table.
 *
 * The poller reports readiness per descriptor.  Each registration carries a
 * generation number chosen by the caller; an event arrives with the
 * generation it was registered with, so an event for a descriptor that was
 * closed (and maybe reopened under the same number) while the event sat in
 * a batch is recognised as stale and dropped. */
#ifndef SP_POLL_H
#define SP_POLL_H

#include <stdint.h>
#include <sys/types.h>

#define SP__EV_IN  1u
#define SP__EV_OUT 2u
#define SP__EV_ERR 4u  /* error or hang-up: wakes readers and writers */
#define SP__EV_HUP 8u  /* the peer closed its side: reads end in EOF from now on */

typedef struct sp__poller sp__poller;

/* What a wait reports: readiness of a descriptor, or the completion of an
 * operation the backend performed itself (io_uring file I/O). */
typedef struct sp__pevent {
    enum { SP__PE_READY, SP__PE_DONE, SP__PE_WAKE } kind;
    int fd;
    uint32_t gen;
    unsigned events;   /* READY: SP__EV_* */
    void *token;       /* DONE: what submit_file got */
    int64_t res;       /* DONE: the operation's result or -errno */
} sp__pevent;

typedef void (*sp__pevent_fn)(void *ctx, const sp__pevent *ev);

enum { SP__FILE_READ, SP__FILE_WRITE, SP__FILE_FSYNC };

typedef struct sp__poll_ops {
    const char *name;
    /* Returns 0 or -errno (then the caller may fall back to another). */
    int (*init)(sp__poller *p);
    void (*fini)(sp__poller *p);
    /* Starts watching fd for IN, OUT and hang-ups, once. */
    int (*add)(sp__poller *p, int fd, uint32_t gen);
    /* Level-triggered mode only: what fd is watched for now (SP__EV_*). */
    int (*interest)(sp__poller *p, int fd, uint32_t gen, unsigned events);
    /* Stops watching fd (before it is closed). */
    int (*del)(sp__poller *p, int fd);
    /* Waits up to timeout_ns (-1: no limit; 0: just look); calls fn for each
     * event.  Returns the number of events, or -errno (-EINTR is benign). */
    int (*wait)(sp__poller *p, int64_t timeout_ns, sp__pevent_fn fn, void *ctx);
    /* Interrupts a wait from any thread. */
    int (*wake)(sp__poller *p);
    /* Optional (NULL: not supported): performs file I/O itself and reports
     * SP__PE_DONE with token.  Returns 0 or -errno. */
    int (*submit_file)(sp__poller *p, int op, int fd, void *buf, size_t len,
                       off_t off, void *token);
} sp__poll_ops;

struct sp__poller {
    const sp__poll_ops *ops;
    int fd;          /* the epoll descriptor, or the ring's */
    int wake_fd;     /* an eventfd: other threads write to it to wake us */
    int level;       /* epoll: level-triggered */
    void *impl;      /* backend state */
};

extern const sp__poll_ops sp__epoll_ops;
extern const sp__poll_ops sp__uring_ops;

/* Opens the poller asked for; io_uring falls back to epoll if refused, and
 * *fell_back is set to the errno it was refused with (0 otherwise).
 * Returns 0 or -errno. */
int sp__poller_open(sp__poller *p, int kind, int level, int *fell_back);

#endif
