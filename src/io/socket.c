/* Sockets with deadlines.  Every call tries the system call first and parks
 * only on EAGAIN: when data is already there (the common case under load)
 * a read costs one system call and no poller round trip. */
#define _GNU_SOURCE
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* Checks cancellation, moves to the worker that owns fd (M:N), makes fd
 * non-blocking, and returns its state, or NULL with errno set. */
static sp__fdstate *begin(sp_sched **sp, int fd)
{
    sp_sched *s = *sp;
    if (sp__unlikely(sp__canceled(s->current))) {
        errno = ECANCELED;
        return NULL;
    }
    if (sp__unlikely(s->mn)) {
        int rc = sp__fd_home(&s, fd);
        *sp = s;
        if (rc < 0) {
            errno = -rc;
            return NULL;
        }
    }
    sp__io *io = sp__io_get(s);
    if (!io)
        return NULL;
    sp__fdstate *st = sp__fd(io, fd);
    if (!st) {
        errno = fd < 0 ? EBADF : ENOMEM;
        return NULL;
    }
    if (sp__unlikely(!st->nonblock)) {
        int rc = sp__fd_nonblock(s, fd);
        if (rc < 0) {
            errno = -rc;
            return NULL;
        }
    }
    return st;
}

/* Parks until fd may be ready for ev.  Returns its state again (the table
 * may have moved meanwhile), or NULL with errno set. */
static sp__fdstate *await(sp_sched **s, int fd, unsigned ev, int64_t deadline)
{
    int err = sp__fd_wait(*s, fd, ev, deadline);
    *s = sp__sched();
    if (!err && sp__unlikely((*s)->mn))
        err = -sp__fd_home(s, fd); /* stolen since: back to fd's worker */
    if (err) {
        errno = err;
        return NULL;
    }
    sp__fdstate *st = sp__fd((*s)->poll_ctx, fd);
    st->ready |= (uint8_t)ev;
    return st;
}

/* The loop every call shares: try the call while fd may be ready, park
 * when it is not.  `shortfall` is true when a call that succeeded moved
 * less than asked, which on a stream socket means drained (or full).
 * Past the deadline the call is still tried once, so data that is already
 * there is returned rather than a timeout. */
#define SP__IO_LOOP(s, fd, st, ev, deadline, call, shortfall)              \
    for (int last_ = 0;;) {                                                \
        if ((st)->ready & (ev)) {                                          \
            ssize_t n = (call);                                            \
            if (n >= 0) {                                                  \
                if ((st)->short_means_drained && n > 0 && (shortfall) &&                \
                    !((ev) == SP__EV_IN && (st)->hup))                     \
                    (st)->ready &= (uint8_t)~(ev);                         \
                return n;                                                  \
            }                                                              \
            if (errno == EINTR)                                            \
                continue;                                                  \
            if (errno != EAGAIN && errno != EWOULDBLOCK)                   \
                return -1;                                                 \
            (st)->ready &= (uint8_t)~(ev);                                 \
            if (last_) {                                                   \
                errno = ETIMEDOUT;                                         \
                return -1;                                                 \
            }                                                              \
        }                                                                  \
        if ((deadline) >= 0 && (deadline) <= sp_now()) {                   \
            last_ = 1;                                                     \
            (st)->ready |= (uint8_t)(ev);                                  \
            continue;                                                      \
        }                                                                  \
        if (!((st) = await(&(s), (fd), (ev), (deadline))))                 \
            return -1;                                                     \
    }

int sp_socket(int domain, int type, int protocol)
{
    sp_sched *s = sp__sched();
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd >= 0)
        sp__fd_fresh(s, fd, 1, (type & 0xf) == SOCK_STREAM);
    return fd;
}

ssize_t sp_read(int fd, void *buf, size_t len, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__fdstate *st = begin(&s, fd);
    if (!st)
        return -1;
    SP__IO_LOOP(s, fd, st, SP__EV_IN, deadline, read(fd, buf, len), (size_t)n < len);
}

ssize_t sp_write(int fd, const void *buf, size_t len, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__fdstate *st = begin(&s, fd);
    if (!st)
        return -1;
    SP__IO_LOOP(s, fd, st, SP__EV_OUT, deadline, write(fd, buf, len), (size_t)n < len);
}

ssize_t sp_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t n = sp_write(fd, p, left, deadline);
        if (n < 0)
            return -1;
        p += n;
        left -= (size_t)n;
    }
    return (ssize_t)len;
}

static size_t iov_bytes(const struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    return total;
}

ssize_t sp_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__fdstate *st = begin(&s, fd);
    if (!st)
        return -1;
    SP__IO_LOOP(s, fd, st, SP__EV_IN, deadline, readv(fd, iov, iovcnt),
                (size_t)n < iov_bytes(iov, iovcnt));
}

ssize_t sp_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__fdstate *st = begin(&s, fd);
    if (!st)
        return -1;
    SP__IO_LOOP(s, fd, st, SP__EV_OUT, deadline, writev(fd, iov, iovcnt),
                (size_t)n < iov_bytes(iov, iovcnt));
}

ssize_t sp_recv(int fd, void *buf, size_t len, int flags, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__fdstate *st = begin(&s, fd);
    if (!st)
        return -1;
    if (flags & MSG_DONTWAIT)
        return recv(fd, buf, len, flags);
    /* A peek leaves the data there: it says nothing about draining. */
    SP__IO_LOOP(s, fd, st, SP__EV_IN, deadline, recv(fd, buf, len, flags),
                !(flags & MSG_PEEK) && (size_t)n < len);
}

ssize_t sp_send(int fd, const void *buf, size_t len, int flags, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__fdstate *st = begin(&s, fd);
    if (!st)
        return -1;
    if (flags & MSG_DONTWAIT)
        return send(fd, buf, len, flags | MSG_NOSIGNAL);
    SP__IO_LOOP(s, fd, st, SP__EV_OUT, deadline, send(fd, buf, len, flags | MSG_NOSIGNAL),
                (size_t)n < len);
}

ssize_t sp_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__fdstate *st = begin(&s, out_fd);
    if (!st)
        return -1;
    size_t sent = 0;
    while (sent < count) {
        if (st->ready & SP__EV_OUT) {
            ssize_t n = sendfile(out_fd, in_fd, offset, count - sent);
            if (n > 0) {
                sent += (size_t)n;
                continue;
            }
            if (n == 0)
                break; /* end of the file */
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return sent ? (ssize_t)sent : -1;
            st->ready &= (uint8_t)~SP__EV_OUT;
        }
        if (!(st = await(&s, out_fd, SP__EV_OUT, deadline)))
            return sent ? (ssize_t)sent : -1;
    }
    return (ssize_t)sent;
}

int sp_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (!begin(&s, fd))
        return -1;
    if (connect(fd, addr, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -1;
    int err = sp__fd_wait(s, fd, SP__EV_OUT, deadline);
    if (err) {
        errno = err;
        return -1;
    }
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* ---- accept, and running out of descriptors ----
 * One descriptor is held in reserve for the whole process.  When accept
 * fails with EMFILE/ENFILE the reserve is released to accept and close one
 * pending connection (so the listener's queue moves and the peer gets an
 * answer instead of hanging), and then the acceptor sleeps, 1 ms doubling
 * to 100 ms, before it tries again.  It never spins, and it serves again as
 * soon as descriptors are freed. */
#define SP__EMFILE_BACKOFF_MIN_NS 1000000
#define SP__EMFILE_BACKOFF_MAX_NS 100000000

static _Atomic int reserve_fd = -1;

static void reserve_take(void)
{
    if (atomic_load(&reserve_fd) >= 0)
        return;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int expect = -1;
    if (fd >= 0 && !atomic_compare_exchange_strong(&reserve_fd, &expect, fd))
        close(fd);
}

static void shed_one(int lfd)
{
    int fd = atomic_exchange(&reserve_fd, -1);
    if (fd < 0)
        return;
    close(fd);
    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0)
        close(c);
    reserve_take();
}

int sp_accept(int fd, struct sockaddr *addr, socklen_t *len, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__fdstate *st = begin(&s, fd);
    if (!st)
        return -1;
    int stream = st->stream; /* accepted sockets are of the listener's type */
    reserve_take();
    int64_t backoff = SP__EMFILE_BACKOFF_MIN_NS;
    for (;;) {
        int c = -1;
        if (st->ready & SP__EV_IN) {
            c = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c >= 0) {
                sp__fd_fresh(s, c, 1, stream);
                return c;
            }
        } else {
            errno = EAGAIN;
        }
        if (errno == EMFILE || errno == ENFILE) {
            shed_one(fd);
            int64_t until = sp_now() + backoff;
            if (deadline >= 0 && until > deadline)
                until = deadline;
            if (sp_sleep_until(until) != 0)
                return -1;
            if (deadline >= 0 && sp_now() >= deadline) {
                errno = ETIMEDOUT;
                return -1;
            }
            backoff = backoff * 2 > SP__EMFILE_BACKOFF_MAX_NS ? SP__EMFILE_BACKOFF_MAX_NS
                                                               : backoff * 2;
            s = sp__sched();
            st = sp__fd(s->poll_ctx, fd);
            continue;
        }
        if (errno == ECONNABORTED || errno == EPROTO || errno == EINTR)
            continue; /* the peer gave up while queued: not our error */
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        backoff = SP__EMFILE_BACKOFF_MIN_NS;
        st->ready &= (uint8_t)~SP__EV_IN;
        if (!(st = await(&s, fd, SP__EV_IN, deadline)))
            return -1;
    }
}

int sp_listen_tcp(const char *host, int port, int backlog, int flags)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    if (host && (!*host || !strcmp(host, "*")))
        host = NULL;
    if (port < 0 || port > 65535) {
        errno = EINVAL;
        return -1;
    }
    int rc = sp_getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        errno = rc == EAI_SYSTEM ? errno : (rc == EAI_NONAME ? ENOENT : EINVAL);
        return -1;
    }
    int fd = -1, err = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = sp_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if ((flags & SP_LISTEN_REUSEPORT) &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            goto next;
        if (ai->ai_family == AF_INET6) {
            int v6only = (flags & SP_LISTEN_V6ONLY) ? 1 : 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
            break;
    next:
        err = errno;
        sp_close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = err;
    return fd;
}
