/* io_uring backend (liburing).
 *
 * Sockets: it waits for READINESS, with one multishot IORING_OP_POLL_ADD per
 * descriptor, armed once like an edge-triggered epoll registration, and the
 * coroutine then does the read or write itself.  It does not hand socket
 * I/O to the kernel (IORING_OP_RECV/SEND), for two reasons:
 *  - a coroutine's buffer may live on its stack, and a shared-stack
 *    coroutine's stack is copied away while it is parked: the kernel would
 *    write into another coroutine's frames;
 *  - the API stays the same as on epoll (try the call, wait only on
 *    EAGAIN), so the common case, data already there, costs one system
 *    call and no ring round trip.
 * What io_uring still buys: registrations and file I/O are batched into the
 * same io_uring_enter that waits, with a nanosecond timeout.
 *
 * Regular files: read, write and fsync are submitted to the ring
 * (IORING_OP_READ/WRITE/FSYNC) and complete asynchronously, so file I/O
 * needs no helper thread on this backend.  The callers (io/offload.c) pass
 * buffers that stay valid: never on a shared stack.
 *
 * user_data carries a tag in its two low bits: 0 a file operation (the
 * token, an aligned pointer), 1 a readiness event (fd and generation), 2 the
 * wake-up eventfd, 3 a removal whose completion means nothing. */
#define _GNU_SOURCE
#include "poll/poll.h"
#include "common.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Submission queue entries: registrations and file operations between two
 * waits; when it fills, it is submitted early. */
#define SP__URING_ENTRIES 1024
#define SP__GEN_MASK 0x3fffffffu

enum { TAG_FILE = 0, TAG_POLL = 1, TAG_WAKE = 2, TAG_IGNORE = 3 };

typedef struct uring_impl {
    struct io_uring ring;
} uring_impl;

static inline uint64_t poll_data(int fd, uint32_t gen)
{
    return ((((uint64_t)(gen & SP__GEN_MASK)) << 32 | (uint32_t)fd) << 2) | TAG_POLL;
}

static struct io_uring_sqe *get_sqe(uring_impl *im)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&im->ring);
    if (!sqe) {
        io_uring_submit(&im->ring);
        sqe = io_uring_get_sqe(&im->ring);
    }
    return sqe;
}

static int arm_poll(uring_impl *im, int fd, uint64_t data, unsigned mask)
{
    struct io_uring_sqe *sqe = get_sqe(im);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_multishot(sqe, fd, mask);
    io_uring_sqe_set_data64(sqe, data);
    return 0;
}

/* Completions (poll events included) are finished by task work in the
 * submitting thread.  By default the kernel interrupts the thread for it
 * with an IPI-like notification, at any system call, even a read that has
 * nothing to do with the ring; COOP_TASKRUN lets it wait for our next
 * io_uring_enter, which comes at every scheduler pass, and TASKRUN_FLAG
 * sets IORING_SQ_TASKRUN meanwhile so that liburing enters for a wait with
 * no timeout as well (io_uring_submit checks it).  A web server's thread
 * makes several system calls per request: this halves the uring model's
 * cost per request.  Kernels before 5.19 refuse the flags (EINVAL): plain
 * setup then.  Not DEFER_TASKRUN or SINGLE_ISSUER, which would save more:
 * with them test_hook_accept_connect on uring failed (EDEADLK on a second
 * sp_run on the same thread), a cause not yet understood. */
static int ring_init(struct io_uring *ring)
{
#if defined(IORING_SETUP_COOP_TASKRUN) && defined(IORING_SETUP_TASKRUN_FLAG)
    int rc = io_uring_queue_init(SP__URING_ENTRIES, ring,
                                 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
    if (rc != -EINVAL)
        return rc;
#endif
    return io_uring_queue_init(SP__URING_ENTRIES, ring, 0);
}

static int ur_init(sp__poller *p)
{
    uring_impl *im = calloc(1, sizeof *im);
    if (!im)
        return -ENOMEM;
    int rc = ring_init(&im->ring);
    if (rc < 0)
        goto fail_ring;
    p->fd = im->ring.ring_fd;
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wake_fd < 0) {
        rc = -errno;
        goto fail_eventfd;
    }
    p->impl = im;
    rc = arm_poll(im, p->wake_fd, TAG_WAKE, POLLIN);
    if (rc == 0)
        rc = io_uring_submit(&im->ring) < 0 ? -EIO : 0;
    if (rc < 0)
        goto fail_arm;
    return 0;
fail_arm:
    close(p->wake_fd);
fail_eventfd:
    io_uring_queue_exit(&im->ring);
fail_ring:
    free(im);
    p->impl = NULL;
    return rc;
}

static void ur_fini(sp__poller *p)
{
    uring_impl *im = p->impl;
    close(p->wake_fd);
    io_uring_queue_exit(&im->ring);
    free(im);
}

static int ur_add(sp__poller *p, int fd, uint32_t gen)
{
    return arm_poll(p->impl, fd, poll_data(fd, gen), POLLIN | POLLOUT | POLLRDHUP);
}

static int ur_interest(sp__poller *p, int fd, uint32_t gen, unsigned events)
{
    return -ENOTSUP; /* multishot poll is edge-triggered: no level mode */
}

static int ur_del(sp__poller *p, int fd)
{
    /* The generation is not known here, so the removal is by descriptor:
     * io_uring cancels every request on it. */
    uring_impl *im = p->impl;
    struct io_uring_sqe *sqe = get_sqe(im);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
    /* Submitted now: the descriptor is about to be closed and its number
     * may be reused before the next wait. */
    io_uring_submit(&im->ring);
    return 0;
}

static void dispatch(sp__poller *p, struct io_uring_cqe *cqe, sp__pevent_fn fn, void *ctx)
{
    uring_impl *im = p->impl;
    uint64_t d = io_uring_cqe_get_data64(cqe);
    sp__pevent pe;
    memset(&pe, 0, sizeof pe);
    switch (d & 3) {
    case TAG_FILE:
        pe.kind = SP__PE_DONE;
        pe.token = (void *)(uintptr_t)d;
        pe.res = cqe->res;
        fn(ctx, &pe);
        break;
    case TAG_POLL:
        pe.kind = SP__PE_READY;
        pe.fd = (int)(uint32_t)(d >> 2);
        pe.gen = (uint32_t)(d >> 34) & SP__GEN_MASK;
        if (cqe->res < 0) {
            if (cqe->res == -ECANCELED)
                break; /* removed by ur_del */
            pe.events = SP__EV_ERR | SP__EV_IN | SP__EV_OUT;
        } else {
            unsigned m = (unsigned)cqe->res;
            if (m & (POLLIN | POLLRDHUP))
                pe.events |= SP__EV_IN;
            if (m & POLLOUT)
                pe.events |= SP__EV_OUT;
            if (m & (POLLERR | POLLHUP))
                pe.events |= SP__EV_ERR | SP__EV_IN | SP__EV_OUT;
            if (m & (POLLRDHUP | POLLHUP))
                pe.events |= SP__EV_HUP;
        }
        /* The kernel ends a multishot poll on its own at times (overflow);
         * arm it again so the descriptor stays watched. */
        if (!(cqe->flags & IORING_CQE_F_MORE) && cqe->res >= 0)
            arm_poll(im, pe.fd, d, POLLIN | POLLOUT | POLLRDHUP);
        fn(ctx, &pe);
        break;
    case TAG_WAKE: {
        uint64_t v;
        ssize_t r = read(p->wake_fd, &v, sizeof v);
        (void)r;
        if (!(cqe->flags & IORING_CQE_F_MORE))
            arm_poll(im, p->wake_fd, TAG_WAKE, POLLIN);
        pe.kind = SP__PE_WAKE;
        fn(ctx, &pe);
        break;
    }
    default:
        break;
    }
}

static int ur_wait(sp__poller *p, int64_t timeout_ns, sp__pevent_fn fn, void *ctx)
{
    uring_impl *im = p->impl;
    struct io_uring_cqe *cqe;
    int rc;
    if (timeout_ns == 0) {
        rc = io_uring_submit(&im->ring);
    } else {
        struct __kernel_timespec ts, *tp = NULL;
        if (timeout_ns > 0) {
            ts.tv_sec = timeout_ns / 1000000000;
            ts.tv_nsec = timeout_ns % 1000000000;
            tp = &ts;
        }
        rc = io_uring_submit_and_wait_timeout(&im->ring, &cqe, 1, tp, NULL);
        if (rc == -ETIME)
            rc = 0;
    }
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    int n = 0;
    unsigned head;
    io_uring_for_each_cqe(&im->ring, head, cqe) {
        dispatch(p, cqe, fn, ctx);
        n++;
    }
    io_uring_cq_advance(&im->ring, (unsigned)n);
    return n;
}

static int ur_wake(sp__poller *p)
{
    uint64_t one = 1;
    return write(p->wake_fd, &one, sizeof one) == sizeof one ? 0 : -errno;
}

static int ur_submit_file(sp__poller *p, int op, int fd, void *buf, size_t len,
                          off_t off, void *token)
{
    uring_impl *im = p->impl;
    struct io_uring_sqe *sqe = get_sqe(im);
    if (!sqe)
        return -EBUSY;
    switch (op) {
    case SP__FILE_READ: io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)off); break;
    case SP__FILE_WRITE: io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)off); break;
    default: io_uring_prep_fsync(sqe, fd, 0); break;
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)token);
    return 0;
}

const sp__poll_ops sp__uring_ops = {
    .name = "uring",
    .init = ur_init,
    .fini = ur_fini,
    .add = ur_add,
    .interest = ur_interest,
    .del = ur_del,
    .wait = ur_wait,
    .wake = ur_wake,
    .submit_file = ur_submit_file,
};
