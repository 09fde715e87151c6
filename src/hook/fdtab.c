/* The hook's descriptor table: what the program believes about each of
 * its descriptors, process-wide (descriptors are), beside the runtime's
 * per-thread sp__fdstate (what the poller knows).
 *
 * Why a table of our own: the runtime sets O_NONBLOCK on a descriptor it
 * waits on, while the program may have made the same descriptor blocking
 * or non-blocking itself, and expects fcntl(F_GETFL) and EAGAIN to say so;
 * SO_RCVTIMEO and SO_SNDTIMEO, which the kernel ignores on a non-blocking
 * socket, become deadlines; and only descriptors we know are sockets,
 * pipes or eventfds are ever waited on (a regular file, a tty or an
 * inherited pipe shared with another process is left exactly as it is).
 *
 * Layout: blocks of 4096 entries, made on first use and never freed, found
 * through a fixed directory, so a lookup takes no lock and an entry never
 * moves.  Fields are relaxed atomics: two threads may use one descriptor
 * at once (a reader and a writer), which libc allows. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SP__HFD_BLOCK_SHIFT 12
#define SP__HFD_BLOCK (1u << SP__HFD_BLOCK_SHIFT)
/* 4096 blocks: descriptors below 2^24, above any RLIMIT_NOFILE in use
 * (fs.nr_open defaults to 2^20); higher ones are never parked on. */
#define SP__HFD_BLOCKS 4096u

static _Atomic(sp__hfd *) blocks[SP__HFD_BLOCKS];

#define RELAXED memory_order_relaxed

sp__hfd *sp__hfd_get(int fd, int create)
{
    if (fd < 0 || (unsigned)fd >= SP__HFD_BLOCK * SP__HFD_BLOCKS)
        return NULL;
    unsigned bi = (unsigned)fd >> SP__HFD_BLOCK_SHIFT;
    sp__hfd *b = atomic_load_explicit(&blocks[bi], memory_order_acquire);
    if (sp__unlikely(!b)) {
        if (!create)
            return NULL;
        sp__hfd *nb = calloc(SP__HFD_BLOCK, sizeof *nb);
        if (!nb)
            return NULL;
        sp__hfd *expect = NULL;
        if (atomic_compare_exchange_strong_explicit(&blocks[bi], &expect, nb,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            b = nb;
        } else {
            free(nb); /* another thread made it first */
            b = expect;
        }
    }
    return &b[(unsigned)fd & (SP__HFD_BLOCK - 1)];
}

static void hfd_reset(sp__hfd *h, uint32_t flags)
{
    atomic_fetch_add_explicit(&h->inc, 1, RELAXED);
    atomic_store_explicit(&h->rcvtimeo, 0, RELAXED);
    atomic_store_explicit(&h->sndtimeo, 0, RELAXED);
    atomic_store_explicit(&h->owner, NULL, RELAXED);
    atomic_store_explicit(&h->flags, flags, RELAXED);
}

void sp__hfd_made(int fd, uint32_t flags)
{
    sp__hfd *h = sp__hfd_get(fd, 1);
    if (h)
        hfd_reset(h, flags);
}

void sp__hfd_forget(int fd)
{
    sp__hfd *h = sp__hfd_get(fd, 0);
    if (h)
        hfd_reset(h, SP__HFD_NONE);
}

void sp__hfd_dup(int oldfd, int newfd)
{
    sp__hfd *o = sp__hfd_get(oldfd, 0);
    sp__hfd *n = sp__hfd_get(newfd, o != NULL);
    if (!n)
        return;
    /* The two numbers share one open file description, O_NONBLOCK and
     * the socket's timeouts included: copy them (a later change through
     * one number is not seen through the other; see README.md). */
    hfd_reset(n, sp__hfd_flags(o));
    if (o) {
        atomic_store_explicit(&n->rcvtimeo, atomic_load_explicit(&o->rcvtimeo, RELAXED), RELAXED);
        atomic_store_explicit(&n->sndtimeo, atomic_load_explicit(&o->sndtimeo, RELAXED), RELAXED);
    }
}

static int64_t timeo_get(int fd, int name)
{
    struct timeval tv;
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, name, &tv, &len) != 0 || len != sizeof tv)
        return 0;
    return (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}

uint32_t sp__hfd_classify(int fd, sp__hfd **out)
{
    sp__hfd *h = sp__hfd_get(fd, 1);
    *out = h;
    uint32_t f = sp__hfd_flags(h);
    if (!h || (f & SP__HFD_KIND) != SP__HFD_NONE)
        return f;
    /* Made where we could not see it: inherited, passed over a socket, or
     * opened inside a library.  A socket is adopted, with what its
     * file description says now; anything else is never parked on. */
    struct stat st;
    if (fstat(fd, &st) != 0)
        return f; /* not open: the real call says EBADF */
    uint32_t nf = SP__HFD_OTHER;
    if (S_ISSOCK(st.st_mode)) {
        int type = 0;
        socklen_t len = sizeof type;
        int fl = SP__REAL(fcntl)(fd, F_GETFL, 0);
        nf = SP__HFD_SOCK;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
            nf |= SP__HFD_STREAM;
        if (fl >= 0 && (fl & O_NONBLOCK))
            nf |= SP__HFD_USER_NB;
        atomic_store_explicit(&h->rcvtimeo, timeo_get(fd, SO_RCVTIMEO), RELAXED);
        atomic_store_explicit(&h->sndtimeo, timeo_get(fd, SO_SNDTIMEO), RELAXED);
    }
    uint32_t expect = SP__HFD_NONE;
    if (!atomic_compare_exchange_strong_explicit(&h->flags, &expect, nf, RELAXED, RELAXED))
        return expect; /* classified meanwhile by another thread */
    return nf;
}

/* Sets the real O_NONBLOCK for the runtime, and only that flag: one
 * ioctl(FIONBIO), where fcntl would take a F_GETFL and a F_SETFL.
 * Returns 0 or -1 with errno. */
static int set_rt_nonblock(int fd, sp__hfd *h)
{
    int on = 1;
    if (SP__REAL(ioctl)(fd, FIONBIO, &on) < 0)
        return -1;
    atomic_fetch_or_explicit(&h->flags, SP__HFD_RT_NB, RELAXED);
    return 0;
}

sp__fdstate *sp__hook_fdstate(sp_sched *s, int fd, sp__hfd *h, int nonblock)
{
    sp__io *io = sp__io_get(s);
    if (!io)
        return NULL;
    sp__fdstate *st = sp__fd(io, fd);
    if (!st) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t inc = atomic_load_explicit(&h->inc, RELAXED);
    if (sp__unlikely(atomic_load_explicit(&h->owner, RELAXED) != (void *)s ||
                     atomic_load_explicit(&h->owner_inc, RELAXED) != inc)) {
        /* What this thread's table remembers of the number belongs to an
         * older descriptor (closed on another thread, or behind our back),
         * or to nothing yet.  Its poller registration, if any, is dropped
         * (the kernel may keep one alive while a duplicate of the old file
         * is open) and the state starts over. */
        if (st->registered)
            io->poller.ops->del(&io->poller, fd);
        uint32_t f = sp__hfd_flags(h);
        sp__fd_fresh(s, fd, (f & SP__HFD_RT_NB) != 0, (f & SP__HFD_STREAM) != 0);
        st = sp__fd(io, fd);
        atomic_store_explicit(&h->owner_inc, inc, RELAXED);
        atomic_store_explicit(&h->owner, (void *)s, RELAXED);
    }
    if (nonblock && sp__unlikely(!st->nonblock)) {
        if (!(sp__hfd_flags(h) & SP__HFD_RT_NB) && set_rt_nonblock(fd, h) < 0)
            return NULL;
        st->nonblock = 1;
    }
    return st;
}

int64_t sp__hfd_deadline(const sp__hfd *h, unsigned ev)
{
    int64_t t = atomic_load_explicit(ev == SP__EV_IN ? &h->rcvtimeo : &h->sndtimeo, RELAXED);
    return t > 0 ? sp_now() + t : -1;
}

int sp__hook_ms_until(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - sp_now();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}
