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

/* Checks cancellation and makes fd non-blocking; -1 with errno on error. */
static int begin(sp_sched *s, int fd)
{
    if (sp__unlikely(s->current->flags & SP__F_CANCELED)) {
        errno = ECANCELED;
        return -1;
    }
    int rc = sp__fd_nonblock(s, fd);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

/* After a call failed: 1 to retry (EINTR, or EAGAIN and the wait
 * succeeded), 0 to return -1 with errno set. */
static int retry(sp_sched **s, int fd, unsigned ev, int64_t deadline)
{
    if (errno == EINTR)
        return 1;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return 0;
    int err = sp__fd_wait(*s, fd, ev, deadline);
    *s = sp__sched();
    if (err) {
        errno = err;
        return 0;
    }
    return 1;
}

int sp_socket(int domain, int type, int protocol)
{
    sp_sched *s = sp__sched();
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd >= 0)
        sp__fd_fresh(s, fd, 1);
    return fd;
}

ssize_t sp_read(int fd, void *buf, size_t len, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (begin(s, fd) < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || !retry(&s, fd, SP__EV_IN, deadline))
            return n;
    }
}

ssize_t sp_write(int fd, const void *buf, size_t len, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (begin(s, fd) < 0)
        return -1;
    for (;;) {
        ssize_t n = write(fd, buf, len);
        if (n >= 0 || !retry(&s, fd, SP__EV_OUT, deadline))
            return n;
    }
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

ssize_t sp_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (begin(s, fd) < 0)
        return -1;
    for (;;) {
        ssize_t n = readv(fd, iov, iovcnt);
        if (n >= 0 || !retry(&s, fd, SP__EV_IN, deadline))
            return n;
    }
}

ssize_t sp_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (begin(s, fd) < 0)
        return -1;
    for (;;) {
        ssize_t n = writev(fd, iov, iovcnt);
        if (n >= 0 || !retry(&s, fd, SP__EV_OUT, deadline))
            return n;
    }
}

ssize_t sp_recv(int fd, void *buf, size_t len, int flags, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (begin(s, fd) < 0)
        return -1;
    for (;;) {
        ssize_t n = recv(fd, buf, len, flags);
        if (n >= 0 || (flags & MSG_DONTWAIT) || !retry(&s, fd, SP__EV_IN, deadline))
            return n;
    }
}

ssize_t sp_send(int fd, const void *buf, size_t len, int flags, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (begin(s, fd) < 0)
        return -1;
    for (;;) {
        ssize_t n = send(fd, buf, len, flags | MSG_NOSIGNAL);
        if (n >= 0 || (flags & MSG_DONTWAIT) || !retry(&s, fd, SP__EV_OUT, deadline))
            return n;
    }
}

ssize_t sp_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (begin(s, out_fd) < 0)
        return -1;
    size_t sent = 0;
    while (sent < count) {
        ssize_t n = sendfile(out_fd, in_fd, offset, count - sent);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n == 0)
            break; /* end of the file */
        if (!retry(&s, out_fd, SP__EV_OUT, deadline))
            return sent ? (ssize_t)sent : -1;
    }
    return (ssize_t)sent;
}

int sp_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (begin(s, fd) < 0)
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
    if (begin(s, fd) < 0)
        return -1;
    reserve_take();
    int64_t backoff = SP__EMFILE_BACKOFF_MIN_NS;
    for (;;) {
        int c = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            sp__fd_fresh(s, c, 1);
            return c;
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
            continue;
        }
        if (errno == ECONNABORTED || errno == EPROTO)
            continue; /* the peer gave up while queued: not our error */
        backoff = SP__EMFILE_BACKOFF_MIN_NS;
        if (!retry(&s, fd, SP__EV_IN, deadline))
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
