/* poll and select: inside a coroutine, wait for any of the descriptors
 * through the poller (sp__fd_wait_many) instead of blocking the thread.
 *
 * The answer always comes from the real call with a zero timeout, made
 * before each wait and after each wake-up: poll's level-triggered meaning,
 * its revents, its POLLNVAL for a closed descriptor and its errors stay
 * exactly libc's, and an edge-triggered wake-up that turns out spurious
 * only costs another round.  Any descriptor can be waited on this way (no
 * O_NONBLOCK is needed to wait), ours or not; one the poller refuses (a
 * regular file) is always ready, which the zero-timeout call reports
 * before we would wait. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <errno.h>
#include <string.h>
#include <sys/select.h>

/* Descriptors a wait can list without malloc: the common poll of a few. */
#define SP__HOOK_POLL_STACK 16

static unsigned poll_ev(short events)
{
    unsigned ev = 0;
    if (events & (POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND | POLLRDHUP))
        ev |= SP__EV_IN;
    if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
        ev |= SP__EV_OUT;
    /* Asked for nothing, poll still reports errors and hang-ups, which
     * the poller delivers to readers and writers alike. */
    return ev ? ev : SP__EV_IN;
}

/* Parks until one of the n listed descriptors may be ready.  Returns 0, or
 * a positive errno; EPERM/EEXIST mean the poller refused a descriptor. */
static int wait_listed(sp_sched **s, sp__fdwant *w, int n, int64_t deadline)
{
    for (int i = 0; i < n; i++) {
        sp__hfd *h = sp__hfd_get(w[i].fd, 1);
        if (!h)
            return ENOMEM;
        if (!sp__hook_fdstate(*s, w[i].fd, h, 0))
            return errno;
    }
    if (n == 0)
        return sp__hook_sleep_until(s, deadline < 0 ? INT64_MAX : deadline);
    return sp__hook_wait_fds(s, w, n, deadline);
}

static int co_poll(sp_sched *s, struct pollfd *fds, nfds_t nfds, int64_t deadline)
{
    sp__fdwant stackw[SP__HOOK_POLL_STACK], *w = stackw;
    int ret;
    for (;;) {
        ret = SP__REAL(poll)(fds, nfds, 0);
        if (ret != 0)
            break;
        if (deadline >= 0 && sp_now() >= deadline)
            break;
        if (w == stackw && nfds > SP__HOOK_POLL_STACK) {
            w = malloc(nfds * sizeof *w);
            if (!w) {
                errno = ENOMEM;
                ret = -1;
                break;
            }
        }
        int n = 0;
        for (nfds_t i = 0; i < nfds; i++)
            if (fds[i].fd >= 0)
                w[n++] = (sp__fdwant){fds[i].fd, poll_ev(fds[i].events)};
        int err = wait_listed(&s, w, n, deadline);
        if (err == 0 || err == ETIMEDOUT || err == EBADF)
            continue; /* look again: EBADF shows as POLLNVAL */
        if (err == EPERM || err == EEXIST) {
            /* A descriptor the poller will not take: the real call waits
             * (blocking this thread) rather than fail. */
            ret = SP__REAL(poll)(fds, nfds, sp__hook_ms_until(deadline));
            break;
        }
        errno = err;
        ret = -1;
        break;
    }
    if (w != stackw) {
        int e = errno;
        free(w);
        errno = e;
    }
    return ret;
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    sp_sched *s;
    if (timeout == 0 || !(s = sp__hook_sched()))
        return SP__REAL(poll)(fds, nfds, timeout);
    int64_t deadline = timeout < 0 ? -1 : sp_now() + (int64_t)timeout * 1000000;
    int e = errno;
    sp__hook_depth++;
    int r = co_poll(s, fds, nfds, deadline);
    sp__hook_depth--;
    if (r >= 0)
        errno = e; /* untouched on success, as libc leaves it */
    return r;
}

int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
    if (fdslen / sizeof *fds < nfds)
        return SP__REAL(__poll_chk)(fds, nfds, timeout, fdslen); /* reports it */
    return poll(fds, nfds, timeout);
}

/* ---- select ------------------------------------------------------------------ */

/* Bytes of an fd_set that nfds descriptors use (programs with more than
 * FD_SETSIZE descriptors pass larger arrays of the same layout). */
static size_t set_bytes(int nfds)
{
    size_t words = ((size_t)nfds + 8 * sizeof(long) - 1) / (8 * sizeof(long));
    return words * sizeof(long);
}

static int set_has(const fd_set *set, int fd)
{
    const unsigned long *w = (const unsigned long *)(const void *)set;
    return set && (w[(size_t)fd / (8 * sizeof(long))] >> ((size_t)fd % (8 * sizeof(long)))) & 1;
}

static int co_select(sp_sched *s, int nfds, fd_set *sets[3], struct timeval *tv)
{
    size_t bytes = set_bytes(nfds);
    int64_t deadline = tv ? sp_now() + (int64_t)tv->tv_sec * 1000000000 +
                                (int64_t)tv->tv_usec * 1000
                          : -1;
    char stackbuf[3 * sizeof(fd_set)];
    char *buf = bytes <= sizeof(fd_set) ? stackbuf : malloc(3 * bytes);
    sp__fdwant stackw[SP__HOOK_POLL_STACK], *w = stackw;
    int ret;
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        /* The real select on copies, not waiting: its result and errors
         * (EBADF, EINVAL) are the answer whenever there is one. */
        fd_set *copy[3];
        for (int k = 0; k < 3; k++) {
            copy[k] = sets[k] ? (fd_set *)(void *)(buf + (size_t)k * bytes) : NULL;
            if (sets[k])
                memcpy(copy[k], sets[k], bytes);
        }
        struct timeval zero = {0, 0};
        ret = SP__REAL(select)(nfds, copy[0], copy[1], copy[2], &zero);
        int passed = deadline >= 0 && sp_now() >= deadline;
        if (ret != 0 || passed) {
            if (ret >= 0)
                for (int k = 0; k < 3; k++)
                    if (sets[k])
                        memcpy(sets[k], copy[k], bytes);
            break;
        }
        int n = 0;
        for (int fd = 0; fd < nfds; fd++) {
            unsigned ev = (set_has(sets[0], fd) || set_has(sets[2], fd) ? SP__EV_IN : 0) |
                          (set_has(sets[1], fd) ? SP__EV_OUT : 0);
            if (!ev)
                continue;
            if (w == stackw && n == SP__HOOK_POLL_STACK) {
                w = malloc((size_t)nfds * sizeof *w);
                if (!w) {
                    w = stackw;
                    errno = ENOMEM;
                    ret = -1;
                    goto out;
                }
                memcpy(w, stackw, sizeof stackw);
            }
            w[n++] = (sp__fdwant){fd, ev};
        }
        int err = wait_listed(&s, w, n, deadline);
        if (err == 0 || err == ETIMEDOUT || err == EBADF)
            continue;
        if (err == EPERM || err == EEXIST) {
            struct timeval left = {0, 0};
            int ms = sp__hook_ms_until(deadline);
            left.tv_sec = ms / 1000;
            left.tv_usec = (ms % 1000) * 1000;
            ret = SP__REAL(select)(nfds, sets[0], sets[1], sets[2], ms < 0 ? NULL : &left);
            break;
        }
        errno = err;
        ret = -1;
        break;
    }
out:
    if (ret >= 0 && tv) {
        /* Linux leaves the time not slept in *timeout. */
        int64_t left = deadline - sp_now();
        if (left < 0)
            left = 0;
        tv->tv_sec = (time_t)(left / 1000000000);
        tv->tv_usec = (suseconds_t)(left % 1000000000 / 1000);
    }
    int e = errno;
    if (w != stackw)
        free(w);
    if (buf != stackbuf)
        free(buf);
    errno = e;
    return ret;
}

int select(int nfds, fd_set *r, fd_set *wr, fd_set *e, struct timeval *tv)
{
    sp_sched *s;
    /* Bad arguments, a zero timeout, or not in a coroutine: the real call
     * (it reports the EINVAL too; Linux takes a tv_usec of a second or
     * more as that many more seconds, so only negatives are bad). */
    if (nfds < 0 || (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) ||
        (tv && tv->tv_sec == 0 && tv->tv_usec == 0) || !(s = sp__hook_sched()))
        return SP__REAL(select)(nfds, r, wr, e, tv);
    fd_set *sets[3] = {r, wr, e};
    int saved = errno;
    sp__hook_depth++;
    int ret = co_select(s, nfds, sets, tv);
    sp__hook_depth--;
    if (ret >= 0)
        errno = saved;
    return ret;
}
