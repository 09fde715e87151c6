/* The descriptor hooks: read, write and their kin, accept, connect, the
 * calls that make descriptors, close, fcntl, ioctl(FIONBIO), setsockopt.
 *
 * Each call takes one of three roads:
 *  1. inside a coroutine, on a descriptor we may park on that the program
 *     did not make non-blocking: the call is tried on the non-blocking
 *     descriptor and, where it would block, the coroutine parks until the
 *     poller says ready or SO_RCVTIMEO / SO_SNDTIMEO passes;
 *  2. anywhere else, on such a descriptor (a plain thread reading a socket
 *     a coroutine parked on): the real call, and if the descriptor turns
 *     out non-blocking underneath (the runtime's O_NONBLOCK), blocking
 *     behaviour rebuilt with the real poll(2), so the program sees exactly
 *     what a blocking descriptor would do;
 *  3. everything else: the real call, unchanged.
 * A descriptor made inside a coroutine is non-blocking from birth only when
 * threads are coroutines too (born_nonblock); otherwise O_NONBLOCK is set
 * when a coroutine first parks on it, so real threads keep real blocking
 * descriptors.
 * Errors are those of the real call; a timeout is EAGAIN (EINPROGRESS for
 * connect), as socket(7) says for SO_RCVTIMEO and SO_SNDTIMEO. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RELAXED memory_order_relaxed

/* ---- one transfer, whichever call it is ---------------------------------- */

typedef enum {
    OP_READ, OP_READV, OP_RECV, OP_RECVFROM, OP_RECVMSG,   /* in */
    OP_WRITE, OP_WRITEV, OP_SEND, OP_SENDTO, OP_SENDMSG,   /* out */
} op_kind;

typedef struct hook_op {
    op_kind kind;
    int fd, flags;
    void *buf;                    /* read, recv, recvfrom, write, send, sendto */
    size_t len;
    const struct iovec *iov;      /* readv, writev */
    int iovcnt;
    struct sockaddr *from;        /* recvfrom */
    socklen_t *fromlen;
    const struct sockaddr *to;    /* sendto */
    socklen_t tolen;
    struct msghdr *msg;           /* recvmsg, sendmsg */
    /* Once part of a vectored transfer is done: what is left of it (the
     * program's own arrays are const to us). */
    struct iovec *rest;
    struct msghdr msg_rest;
} hook_op;

static inline unsigned op_dir(const hook_op *o)
{
    return o->kind >= OP_WRITE ? SP__EV_OUT : SP__EV_IN;
}

static ssize_t op_call(const hook_op *o)
{
    switch (o->kind) {
    case OP_READ: return SP__REAL(read)(o->fd, o->buf, o->len);
    case OP_READV: return SP__REAL(readv)(o->fd, o->iov, o->iovcnt);
    case OP_RECV: return SP__REAL(recv)(o->fd, o->buf, o->len, o->flags);
    case OP_RECVFROM:
        return SP__REAL(recvfrom)(o->fd, o->buf, o->len, o->flags, o->from, o->fromlen);
    case OP_RECVMSG: return SP__REAL(recvmsg)(o->fd, o->msg, o->flags);
    case OP_WRITE: return SP__REAL(write)(o->fd, o->buf, o->len);
    case OP_WRITEV: return SP__REAL(writev)(o->fd, o->iov, o->iovcnt);
    case OP_SEND: return SP__REAL(send)(o->fd, o->buf, o->len, o->flags);
    case OP_SENDTO:
        return SP__REAL(sendto)(o->fd, o->buf, o->len, o->flags, o->to, o->tolen);
    case OP_SENDMSG: return SP__REAL(sendmsg)(o->fd, o->msg, o->flags);
    }
    errno = EINVAL;
    return -1;
}

static size_t iov_bytes(const struct iovec *iov, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* The bytes the call asks to move. */
static size_t op_len(const hook_op *o)
{
    switch (o->kind) {
    case OP_READV:
    case OP_WRITEV: return iov_bytes(o->iov, o->iovcnt > 0 ? (size_t)o->iovcnt : 0);
    case OP_RECVMSG:
    case OP_SENDMSG: return iov_bytes(o->msg->msg_iov, o->msg->msg_iovlen);
    default: return o->len;
    }
}

/* A call that moves all it was asked or fails: a write on a blocking
 * stream socket or pipe (the kernel sleeps until everything is queued),
 * and a stream read with MSG_WAITALL. */
static int op_whole(const hook_op *o, uint32_t f)
{
    if (!(f & SP__HFD_STREAM))
        return 0;
    if (op_dir(o) == SP__EV_OUT)
        return 1;
    return o->kind != OP_READ && o->kind != OP_READV && (o->flags & MSG_WAITALL);
}

/* n bytes of the transfer are done: make o describe the rest.  Returns 0,
 * or -1 (ENOMEM copying an iovec array). */
static int op_advance(hook_op *o, size_t n)
{
    int vec = o->kind == OP_READV || o->kind == OP_WRITEV;
    if (!vec && o->kind != OP_RECVMSG && o->kind != OP_SENDMSG) {
        o->buf = (char *)o->buf + n;
        o->len -= n;
        return 0;
    }
    if (!o->rest) {
        /* First time: work on a copy, from here on pointed into. */
        const struct iovec *iov = vec ? o->iov : o->msg->msg_iov;
        size_t cnt = vec ? (size_t)o->iovcnt : o->msg->msg_iovlen;
        o->rest = malloc((cnt ? cnt : 1) * sizeof *o->rest);
        if (!o->rest)
            return -1;
        memcpy(o->rest, iov, cnt * sizeof *iov);
        if (vec) {
            o->iov = o->rest;
        } else {
            /* Ancillary data and the peer's address went with (or came
             * with) the first part; the rest moves as plain bytes. */
            o->msg_rest = *o->msg;
            o->msg_rest.msg_iov = o->rest;
            o->msg_rest.msg_control = NULL;
            o->msg_rest.msg_controllen = 0;
            if (o->kind == OP_RECVMSG) {
                o->msg_rest.msg_name = NULL;
                o->msg_rest.msg_namelen = 0;
            }
            o->msg = &o->msg_rest;
        }
    }
    struct iovec *r = vec ? (struct iovec *)o->iov : o->msg->msg_iov; /* inside o->rest */
    size_t cnt = vec ? (size_t)o->iovcnt : o->msg->msg_iovlen;
    while (cnt && n >= r->iov_len) {
        n -= r->iov_len;
        r++;
        cnt--;
    }
    if (cnt) {
        r->iov_base = (char *)r->iov_base + n;
        r->iov_len -= n;
    }
    if (vec) {
        o->iov = r;
        o->iovcnt = (int)cnt;
    } else {
        o->msg->msg_iov = r;
        o->msg->msg_iovlen = cnt;
    }
    return 0;
}

static ssize_t op_finish(hook_op *o, ssize_t ret)
{
    if (o->rest) {
        int e = errno;
        free(o->rest);
        errno = e;
    }
    return ret;
}

/* ---- road 1: parking in a coroutine ---------------------------------------- */

static ssize_t co_io(sp_sched *s, hook_op *o, sp__hfd *h, uint32_t f)
{
    unsigned ev = op_dir(o);
    sp__fdstate *st = sp__hook_fdstate(s, o->fd, h, 1);
    if (!st)
        return -1;
    int64_t deadline = sp__hfd_deadline(h, ev);
    int stream = (f & SP__HFD_STREAM) != 0, whole = op_whole(o, f), last = 0;
    size_t done = 0;
    for (;;) {
        if (st->ready & ev) {
            size_t want = op_len(o);
            ssize_t n = op_call(o);
            if (n >= 0) {
                /* A short transfer on a stream drained (or filled) it:
                 * the next call parks without asking the kernel. */
                if (stream && (size_t)n < want)
                    st->ready &= (uint8_t)~ev;
                if (!whole || n == 0 || (size_t)n >= want)
                    return op_finish(o, (ssize_t)(done + (size_t)n));
                done += (size_t)n;
                if (op_advance(o, (size_t)n) < 0)
                    return op_finish(o, (ssize_t)done);
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return op_finish(o, done ? (ssize_t)done : -1);
            st->ready &= (uint8_t)~ev;
            if (last) {
                errno = EAGAIN; /* SO_RCVTIMEO / SO_SNDTIMEO passed */
                return op_finish(o, done ? (ssize_t)done : -1);
            }
        }
        sp__fdwant w = {o->fd, ev};
        int err = sp__hook_wait_fds(&s, &w, 1, deadline);
        st = sp__fd(s->poll_ctx, o->fd);
        st->ready |= (uint8_t)ev;
        if (err == ETIMEDOUT) {
            last = 1; /* as the kernel does, look once more before EAGAIN */
            continue;
        }
        if (err) {
            errno = err;
            return op_finish(o, done ? (ssize_t)done : -1);
        }
    }
}

/* ---- road 2: a blocking call on a descriptor we made non-blocking ------------ */

/* Waits with the real poll until fd is ready for ev or the deadline.
 * Returns 1 ready, 0 timed out, -1 error.  A signal restarts the wait, as
 * SA_RESTART would restart the blocking call. */
static int real_wait(int fd, unsigned ev, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = ev == SP__EV_IN ? POLLIN : POLLOUT};
    for (;;) {
        int r = SP__REAL(poll)(&p, 1, sp__hook_ms_until(deadline));
        if (r >= 0)
            return r > 0;
        if (errno != EINTR)
            return -1;
    }
}

/* On a descriptor that is really blocking this is the real call and
 * nothing more: the kernel blocks, and its answer is returned as is.  Only
 * once the descriptor shows it is non-blocking (the runtime's flag, or an
 * EAGAIN) are EAGAIN waited out and a stream write finished. */
static ssize_t emulate_blocking(hook_op *o, sp__hfd *h, uint32_t f)
{
    unsigned ev = op_dir(o);
    int64_t deadline = sp__hfd_deadline(h, ev);
    int whole = op_whole(o, f), nb = (f & SP__HFD_RT_NB) != 0, last = 0;
    size_t done = 0;
    for (;;) {
        size_t want = op_len(o);
        ssize_t n = op_call(o);
        if (n >= 0) {
            if (!whole || !nb || n == 0 || (size_t)n >= want)
                return op_finish(o, (ssize_t)(done + (size_t)n));
            done += (size_t)n;
            if (op_advance(o, (size_t)n) < 0)
                return op_finish(o, (ssize_t)done);
            continue;
        }
        /* EINTR included: the kernel interrupted a blocking call for a
         * handler without SA_RESTART, and libc would say so. */
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || last)
            return op_finish(o, done ? (ssize_t)done : -1);
        nb = 1;
        int r = real_wait(o->fd, ev, deadline);
        if (r < 0)
            return op_finish(o, done ? (ssize_t)done : -1);
        last = r == 0;
    }
}

/* ---- the dispatch every transfer shares ---------------------------------------- */

static inline int wants_blocking(uint32_t f)
{
    return !(f & SP__HFD_USER_NB);
}

/* Road 2: a descriptor of ours the program believes blocking.  Whether it
 * really is non-blocking is not asked: the runtime may have set the flag
 * through a duplicate of it (one open file, two numbers). */
static inline int road2(uint32_t f)
{
    return sp__hfd_parkable(f) && wants_blocking(f);
}

/* Made non-blocking at birth (saving the ioctl of the first park) only
 * where threads are coroutines too: then nothing but coroutines will use
 * it.  With real threads, a socket the main coroutine accepts is usually
 * handed to a thread, which should get a truly blocking descriptor rather
 * than blocking rebuilt with poll on every call (road 2): there the runtime
 * sets O_NONBLOCK when a coroutine first parks on it. */
static inline int born_nonblock(int user_nb)
{
    return !user_nb && (sp__hook_mode_get() & SP__HOOK_THREADS) && sp__hook_sched() != NULL;
}

/* A call that succeeds leaves errno as the caller had it, as libc's
 * does, though our tries on the way may have met EAGAIN. */
#define KEEP_ERRNO_ON_SUCCESS(type, call) \
    ({                                     \
        int e_ = errno;                    \
        type r_ = (call);                  \
        if (r_ >= 0)                       \
            errno = e_;                    \
        r_;                                \
    })

static ssize_t hook_io(hook_op *o)
{
    sp__hfd *h = sp__hfd_get(o->fd, 0);
    uint32_t f = sp__hfd_flags(h);
    if (o->flags & MSG_DONTWAIT)
        return op_call(o);
    sp_sched *s = sp__hook_sched();
    if (s) {
        if ((f & SP__HFD_KIND) == SP__HFD_NONE)
            f = sp__hfd_classify(o->fd, &h);
        if (sp__hfd_parkable(f) && wants_blocking(f)) {
            sp__hook_depth++;
            ssize_t r = KEEP_ERRNO_ON_SUCCESS(ssize_t, co_io(s, o, h, f));
            sp__hook_depth--;
            return r;
        }
    }
    if (road2(f))
        return KEEP_ERRNO_ON_SUCCESS(ssize_t, emulate_blocking(o, h, f));
    return op_call(o);
}

ssize_t read(int fd, void *buf, size_t len)
{
    hook_op o = {.kind = OP_READ, .fd = fd, .buf = buf, .len = len};
    return hook_io(&o);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    hook_op o = {.kind = OP_WRITE, .fd = fd, .buf = (void *)buf, .len = len};
    return hook_io(&o);
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    hook_op o = {.kind = OP_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt};
    return hook_io(&o);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    hook_op o = {.kind = OP_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt};
    return hook_io(&o);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    hook_op o = {.kind = OP_RECV, .fd = fd, .buf = buf, .len = len, .flags = flags};
    return hook_io(&o);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                 socklen_t *fromlen)
{
    hook_op o = {.kind = OP_RECVFROM, .fd = fd, .buf = buf, .len = len, .flags = flags,
                 .from = from, .fromlen = fromlen};
    return hook_io(&o);
}

/* Descriptors that arrive in SCM_RIGHTS were made where we could not see:
 * whatever the table says of their numbers is stale. */
static void forget_passed_fds(const struct msghdr *m)
{
    if (!m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c;
         c = CMSG_NXTHDR((struct msghdr *)m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *p = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, p + i * sizeof fd, sizeof fd);
            sp__hfd_forget(fd);
        }
    }
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    hook_op o = {.kind = OP_RECVMSG, .fd = fd, .msg = msg, .flags = flags};
    ssize_t n = hook_io(&o);
    if (n >= 0)
        forget_passed_fds(msg);
    return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    hook_op o = {.kind = OP_SEND, .fd = fd, .buf = (void *)buf, .len = len, .flags = flags};
    return hook_io(&o);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen)
{
    hook_op o = {.kind = OP_SENDTO, .fd = fd, .buf = (void *)buf, .len = len, .flags = flags,
                 .to = to, .tolen = tolen};
    return hook_io(&o);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    hook_op o = {.kind = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg, .flags = flags};
    return hook_io(&o);
}

/* Fortified programs call these instead; the length check is theirs. */
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
    if (len > buflen)
        return SP__REAL(__read_chk)(fd, buf, len, buflen); /* reports the overflow */
    return read(fd, buf, len);
}

ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
    if (len > buflen)
        return SP__REAL(__recv_chk)(fd, buf, len, buflen, flags);
    return recv(fd, buf, len, flags);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                       struct sockaddr *from, socklen_t *fromlen)
{
    if (len > buflen)
        return SP__REAL(__recvfrom_chk)(fd, buf, len, buflen, flags, from, fromlen);
    return recvfrom(fd, buf, len, flags, from, fromlen);
}

/* ---- accept ------------------------------------------------------------------------ */

/* flags: accept4's, with SOCK_NONBLOCK added where the new socket is to
 * be non-blocking at birth (born_nonblock). */
static int co_accept(sp_sched *s, int fd, sp__hfd *h, struct sockaddr *a, socklen_t *alen,
                     int flags)
{
    sp__fdstate *st = sp__hook_fdstate(s, fd, h, 1);
    if (!st)
        return -1;
    int64_t deadline = sp__hfd_deadline(h, SP__EV_IN);
    int last = 0;
    for (;;) {
        if (st->ready & SP__EV_IN) {
            int c = SP__REAL(accept4)(fd, a, alen, flags);
            if (c >= 0)
                return c;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            st->ready &= (uint8_t)~SP__EV_IN;
            if (last) {
                errno = EAGAIN;
                return -1;
            }
        }
        sp__fdwant w = {fd, SP__EV_IN};
        int err = sp__hook_wait_fds(&s, &w, 1, deadline);
        st = sp__fd(s->poll_ctx, fd);
        st->ready |= SP__EV_IN;
        if (err == ETIMEDOUT) {
            last = 1;
            continue;
        }
        if (err) {
            errno = err;
            return -1;
        }
    }
}

static int emulate_accept(int fd, sp__hfd *h, struct sockaddr *a, socklen_t *alen, int flags)
{
    int64_t deadline = sp__hfd_deadline(h, SP__EV_IN);
    for (int last = 0;;) {
        int c = SP__REAL(accept4)(fd, a, alen, flags);
        if (c >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || last)
            return c; /* EINTR too, as for a transfer */
        int r = real_wait(fd, SP__EV_IN, deadline);
        if (r < 0)
            return -1;
        last = r == 0;
    }
}

static int hook_accept(int fd, struct sockaddr *a, socklen_t *alen, int flags, int four)
{
    sp__hfd *h = sp__hfd_get(fd, 0);
    uint32_t f = sp__hfd_flags(h);
    sp_sched *s = sp__hook_sched();
    uint32_t rt = 0;
    int c;
    if (s && (f & SP__HFD_KIND) == SP__HFD_NONE)
        f = sp__hfd_classify(fd, &h);
    if (s && sp__hfd_parkable(f) && wants_blocking(f)) {
        rt = born_nonblock(flags & SOCK_NONBLOCK) ? SP__HFD_RT_NB : 0;
        sp__hook_depth++;
        c = KEEP_ERRNO_ON_SUCCESS(int, co_accept(s, fd, h, a, alen,
                                                 flags | (rt ? SOCK_NONBLOCK : 0)));
        sp__hook_depth--;
    } else if (road2(f)) {
        c = KEEP_ERRNO_ON_SUCCESS(int, emulate_accept(fd, h, a, alen, flags));
    } else {
        c = four ? SP__REAL(accept4)(fd, a, alen, flags) : SP__REAL(accept)(fd, a, alen);
    }
    if (c < 0)
        return c;
    int e = errno;
    /* Linux: the new socket inherits the listener's type and timeouts,
     * not its O_NONBLOCK. */
    uint32_t nf = SP__HFD_SOCK | (f & SP__HFD_STREAM) | rt |
                  ((flags & SOCK_NONBLOCK) ? SP__HFD_USER_NB : 0);
    if ((f & SP__HFD_KIND) != SP__HFD_SOCK)
        nf = SP__HFD_NONE; /* a listener we never looked at: look at this one later */
    sp__hfd_made(c, nf);
    sp__hfd *n = sp__hfd_get(c, 0);
    if (n && h) {
        atomic_store_explicit(&n->rcvtimeo, atomic_load_explicit(&h->rcvtimeo, RELAXED), RELAXED);
        atomic_store_explicit(&n->sndtimeo, atomic_load_explicit(&h->sndtimeo, RELAXED), RELAXED);
    }
    errno = e;
    return c;
}

int accept(int fd, struct sockaddr *a, socklen_t *alen)
{
    return hook_accept(fd, a, alen, 0, 0);
}

int accept4(int fd, struct sockaddr *a, socklen_t *alen, int flags)
{
    return hook_accept(fd, a, alen, flags, 1);
}

/* ---- connect ---------------------------------------------------------------------- */

/* A connection in progress: wait until it is writable and report how it
 * went.  Returns 0 or -1 with errno (EINPROGRESS when SO_SNDTIMEO passed). */
static int connect_result(sp_sched **s, int fd, int64_t deadline)
{
    int err;
    if (s) {
        sp__fdwant w = {fd, SP__EV_OUT};
        err = sp__hook_wait_fds(s, &w, 1, deadline);
    } else {
        int r = real_wait(fd, SP__EV_OUT, deadline);
        err = r > 0 ? 0 : r == 0 ? ETIMEDOUT : errno;
    }
    if (err) {
        errno = err == ETIMEDOUT ? EINPROGRESS : err;
        return -1;
    }
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* SP__EMFILE-like backoff for a full AF_UNIX backlog (EAGAIN): the socket
 * says nothing through the poller until the peer accepts. */
#define SP__HOOK_CONNECT_RETRY_MIN_NS 1000000
#define SP__HOOK_CONNECT_RETRY_MAX_NS 100000000

static int blocking_connect(sp_sched *s, int fd, sp__hfd *h, const struct sockaddr *a,
                            socklen_t alen)
{
    int64_t deadline = sp__hfd_deadline(h, SP__EV_OUT);
    int64_t backoff = SP__HOOK_CONNECT_RETRY_MIN_NS;
    if (s && !sp__hook_fdstate(s, fd, h, 1))
        return -1;
    for (;;) {
        if (SP__REAL(connect)(fd, a, alen) == 0)
            return 0;
        /* EINTR: in a coroutine the socket is non-blocking and the
         * handshake goes on; on a blocking one libc reports EINTR. */
        if (errno == EINPROGRESS || (errno == EINTR && s))
            return connect_result(s ? &s : NULL, fd, deadline);
        if (errno != EAGAIN)
            return -1;
        int64_t until = sp_now() + backoff;
        if (deadline >= 0 && until >= deadline) {
            errno = EAGAIN;
            return -1;
        }
        if (s) {
            int err = sp__hook_sleep_until(&s, until);
            if (err) {
                errno = err;
                return -1;
            }
        } else {
            struct timespec ts = {(time_t)(backoff / 1000000000), (long)(backoff % 1000000000)};
            SP__REAL(nanosleep)(&ts, NULL);
        }
        backoff = backoff * 2 > SP__HOOK_CONNECT_RETRY_MAX_NS ? SP__HOOK_CONNECT_RETRY_MAX_NS
                                                               : backoff * 2;
    }
}

int connect(int fd, const struct sockaddr *a, socklen_t alen)
{
    sp__hfd *h = sp__hfd_get(fd, 0);
    uint32_t f = sp__hfd_flags(h);
    sp_sched *s = sp__hook_sched();
    if (s && (f & SP__HFD_KIND) == SP__HFD_NONE)
        f = sp__hfd_classify(fd, &h);
    if (s && sp__hfd_parkable(f) && wants_blocking(f)) {
        sp__hook_depth++;
        int r = KEEP_ERRNO_ON_SUCCESS(int, blocking_connect(s, fd, h, a, alen));
        sp__hook_depth--;
        return r;
    }
    if (road2(f))
        return KEEP_ERRNO_ON_SUCCESS(int, blocking_connect(NULL, fd, h, a, alen));
    return SP__REAL(connect)(fd, a, alen);
}

/* ---- calls that make descriptors --------------------------------------------- */

int socket(int domain, int type, int protocol)
{
    int user_nb = (type & SOCK_NONBLOCK) != 0, force = born_nonblock(user_nb);
    int fd = SP__REAL(socket)(domain, type | (force ? SOCK_NONBLOCK : 0), protocol);
    if (fd >= 0) {
        int e = errno;
        int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        sp__hfd_made(fd, SP__HFD_SOCK | (base == SOCK_STREAM ? SP__HFD_STREAM : 0) |
                             (user_nb ? SP__HFD_USER_NB : 0) | (force ? SP__HFD_RT_NB : 0));
        errno = e;
    }
    return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
    int user_nb = (type & SOCK_NONBLOCK) != 0, force = born_nonblock(user_nb);
    int r = SP__REAL(socketpair)(domain, type | (force ? SOCK_NONBLOCK : 0), protocol, sv);
    if (r == 0) {
        int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        uint32_t f = SP__HFD_SOCK | (base == SOCK_STREAM ? SP__HFD_STREAM : 0) |
                     (user_nb ? SP__HFD_USER_NB : 0) | (force ? SP__HFD_RT_NB : 0);
        sp__hfd_made(sv[0], f);
        sp__hfd_made(sv[1], f);
    }
    return r;
}

static int hook_pipe(int p[2], int flags, int two)
{
    int user_nb = (flags & O_NONBLOCK) != 0, force = born_nonblock(user_nb);
    int r = two || force ? SP__REAL(pipe2)(p, flags | (force ? O_NONBLOCK : 0)) : SP__REAL(pipe)(p);
    if (r == 0) {
        /* O_DIRECT makes a packet pipe: a short read is one packet. */
        uint32_t f = SP__HFD_PIPE | ((flags & O_DIRECT) ? 0 : SP__HFD_STREAM) |
                     (user_nb ? SP__HFD_USER_NB : 0) | (force ? SP__HFD_RT_NB : 0);
        sp__hfd_made(p[0], f);
        sp__hfd_made(p[1], f);
    }
    return r;
}

int pipe(int p[2])
{
    return hook_pipe(p, 0, 0);
}

int pipe2(int p[2], int flags)
{
    return hook_pipe(p, flags, 1);
}

int eventfd(unsigned initval, int flags)
{
    int user_nb = (flags & EFD_NONBLOCK) != 0, force = born_nonblock(user_nb);
    int fd = SP__REAL(eventfd)(initval, flags | (force ? EFD_NONBLOCK : 0));
    if (fd >= 0) {
        int e = errno;
        sp__hfd_made(fd, SP__HFD_EVENT | (user_nb ? SP__HFD_USER_NB : 0) |
                             (force ? SP__HFD_RT_NB : 0));
        errno = e;
    }
    return fd;
}

int dup(int fd)
{
    int r = SP__REAL(dup)(fd);
    if (r >= 0) {
        int e = errno;
        sp__hfd_dup(fd, r);
        errno = e;
    }
    return r;
}

/* dup2 closes newfd first, atomically: its old state is forgotten through
 * the new incarnation (the next use on any scheduler starts over). */
int dup2(int fd, int newfd)
{
    int r = SP__REAL(dup2)(fd, newfd);
    if (r >= 0 && fd != newfd) {
        int e = errno;
        sp__hfd_dup(fd, newfd);
        errno = e;
    }
    return r;
}

int dup3(int fd, int newfd, int flags)
{
    int r = SP__REAL(dup3)(fd, newfd, flags);
    if (r >= 0) {
        int e = errno;
        sp__hfd_dup(fd, newfd);
        errno = e;
    }
    return r;
}

/* ---- close ------------------------------------------------------------------- */

/* On a thread with a scheduler the close goes through sp_close, which wakes
 * this thread's waiters with EBADF, unregisters the descriptor and resets
 * what the runtime remembers of the number; with the hooks off too, since
 * a stale "non-blocking" bit there would make a later sp_read on the
 * number's next descriptor block the thread.  Never in a forked child
 * (its epoll_ctl would reach the parent's poller), nor from a signal
 * handler that interrupted the runtime. */
int close(int fd)
{
    sp__hfd_forget(fd); /* while the number is still ours */
    sp_sched *s = sp__tls_sched;
    if (s && s->poll_ctx && !sp__hook_depth && s->current->state == SP__CO_RUNNING &&
        !(sp__hook_mode_get() & SP__HOOK_FORKED))
        return sp_close(fd);
    return SP__REAL(close)(fd);
}

/* ---- fcntl, ioctl(FIONBIO): the program's O_NONBLOCK ------------------------- */

static void set_user_nb(sp__hfd *h, int on)
{
    if (on)
        atomic_fetch_or_explicit(&h->flags, SP__HFD_USER_NB, RELAXED);
    else
        atomic_fetch_and_explicit(&h->flags, ~(uint32_t)SP__HFD_USER_NB, RELAXED);
}

static int hook_fcntl(int is64, int fd, int cmd, void *arg)
{
    int (*real)(int, int, ...) = is64 ? SP__REAL(fcntl64) : SP__REAL(fcntl);
    sp__hfd *h;
    uint32_t f;
    int r;
    switch (cmd) {
    case F_GETFL:
        r = real(fd, cmd, arg);
        f = sp__hfd_flags(sp__hfd_get(fd, 0));
        /* The program sees its own O_NONBLOCK, not the runtime's. */
        if (r >= 0 && sp__hfd_parkable(f))
            r = (r & ~O_NONBLOCK) | ((f & SP__HFD_USER_NB) ? O_NONBLOCK : 0);
        return r;
    case F_SETFL:
        h = sp__hfd_get(fd, 0);
        f = sp__hfd_flags(h);
        if (!sp__hfd_parkable(f))
            return real(fd, cmd, arg);
        int fl = (int)(intptr_t)arg;
        r = real(fd, cmd, (void *)(intptr_t)(fl | ((f & SP__HFD_RT_NB) ? O_NONBLOCK : 0)));
        if (r == 0)
            set_user_nb(h, (fl & O_NONBLOCK) != 0);
        return r;
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
        r = real(fd, cmd, arg);
        if (r >= 0) {
            int e = errno;
            sp__hfd_dup(fd, r);
            errno = e;
        }
        return r;
    default:
        return real(fd, cmd, arg);
    }
}

/* The optional argument is read as a pointer, as glibc's own fcntl does. */
int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return hook_fcntl(0, fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return hook_fcntl(1, fd, cmd, arg);
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    sp__hfd *h;
    uint32_t f;
    if (req != FIONBIO || !arg || !sp__hfd_parkable(f = sp__hfd_flags(h = sp__hfd_get(fd, 0))))
        return SP__REAL(ioctl)(fd, req, arg);
    int on = *(const int *)arg != 0;
    int real_on = on || (f & SP__HFD_RT_NB);
    int r = SP__REAL(ioctl)(fd, req, &real_on);
    if (r == 0)
        set_user_nb(h, on);
    return r;
}

/* ---- setsockopt: SO_RCVTIMEO / SO_SNDTIMEO become deadlines -------------------- */

/* What the kernel does with the value (net/core/sock.c, sock_set_timeout):
 * zero is no timeout, a negative second count is "do not wait". */
static int64_t timeo_ns(int64_t sec, int64_t usec)
{
    if (sec < 0)
        return 1;
    if (sec == 0 && usec == 0)
        return 0;
    if (sec > INT64_MAX / 1000000000 - 1)
        return 0; /* beyond the kernel's limit: no timeout */
    return sec * 1000000000 + usec * 1000;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    int r = SP__REAL(setsockopt)(fd, level, name, val, len);
    if (r != 0 || level != SOL_SOCKET || !val)
        return r;
    int rcv;
    int64_t ns;
    if (name == SO_RCVTIMEO || name == SO_SNDTIMEO) {
        struct timeval tv;
        if (len < sizeof tv)
            return r;
        memcpy(&tv, val, sizeof tv);
        ns = timeo_ns(tv.tv_sec, tv.tv_usec);
        rcv = name == SO_RCVTIMEO;
#if defined(SO_RCVTIMEO_NEW) && SO_RCVTIMEO_NEW != SO_RCVTIMEO
    } else if (name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW) {
        int64_t tv[2]; /* struct __kernel_sock_timeval */
        if (len < sizeof tv)
            return r;
        memcpy(tv, val, sizeof tv);
        ns = timeo_ns(tv[0], tv[1]);
        rcv = name == SO_RCVTIMEO_NEW;
#endif
    } else {
        return r;
    }
    sp__hfd *h = sp__hfd_get(fd, 1);
    if (h)
        atomic_store_explicit(rcv ? &h->rcvtimeo : &h->sndtimeo, ns, RELAXED);
    return r;
}
