/* Descriptor waits: the per-thread table of descriptor states, the poll
 * hook the scheduler calls, and sp_wait_fd / sp_close. */
#define _GNU_SOURCE
#include "io/io.h"
#include "mn/mn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void wl_push(sp__wlist *l, sp__waiter *w)
{
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
}

static void wl_remove(sp__wlist *l, sp__waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
}

sp__fdstate *sp__fd_grow(sp__io *io, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= io->nfds) {
        size_t n = io->nfds ? io->nfds : 1024;
        while (n <= (size_t)fd)
            n *= 2;
        sp__fdstate *t = realloc(io->fds, n * sizeof *t);
        if (!t)
            return NULL;
        memset(t + io->nfds, 0, (n - io->nfds) * sizeof *t);
        for (size_t i = io->nfds; i < n; i++)
            t[i].ready = SP__EV_IN | SP__EV_OUT; /* unknown: try first */
        io->fds = t;
        io->nfds = n;
    }
    return &io->fds[fd];
}

/* Unlinks and frees every waiter of co's current wait (wait_unlink). */
static void fd_unlink(sp_co *co)
{
    sp_sched *s = co->sched;
    sp__io *io = s->poll_ctx;
    sp__waiter *w = co->wait_obj;
    while (w) {
        sp__waiter *next = w->sibling;
        wl_remove(&io->fds[w->fd].wl[w->dir], w);
        sp__mem_free(&s->mem, w, sizeof *w);
        w = next;
    }
    co->wait_obj = NULL;
}

/* Wakes every coroutine waiting in list l with err. */
static void wake_list(sp_sched *s, sp__wlist *l, int err)
{
    while (l->head) {
        sp_co *co = l->head->co;
        fd_unlink(co); /* removes l->head, and its siblings elsewhere */
        sp__wake(s, co, err);
    }
}

static void on_event(void *ctx, const sp__pevent *ev)
{
    sp_sched *s = ctx;
    sp__io *io = s->poll_ctx;
    if (ev->kind == SP__PE_WAKE) {
        pthread_mutex_lock(&io->lock);
        sp__offload_job *job = io->done;
        io->done = NULL;
        pthread_mutex_unlock(&io->lock);
        while (job) {
            sp__offload_job *next = *(sp__offload_job **)job; /* first member */
            sp__offload_complete(s, job);
            job = next;
        }
        return;
    }
    if (ev->kind == SP__PE_DONE) {
        /* io_uring file I/O: the token is the waiting coroutine, and its
         * result travels in wait_obj (see offload.c). */
        sp_co *co = ev->token;
        co->wait_obj = (void *)(intptr_t)ev->res;
        sp__wake(s, co, 0);
        return;
    }
    if ((size_t)ev->fd >= io->nfds)
        return;
    sp__fdstate *st = &io->fds[ev->fd];
    if (!st->registered || (st->gen & 0x3fffffffu) != (ev->gen & 0x3fffffffu))
        return; /* closed (and maybe reopened) after the event was queued */
    st->ready |= (uint8_t)(ev->events & (SP__EV_IN | SP__EV_OUT));
    if (ev->events & SP__EV_HUP)
        st->hup = 1;
    if (ev->events & SP__EV_IN)
        wake_list(s, &st->wl[0], 0);
    if (ev->events & SP__EV_OUT)
        wake_list(s, &st->wl[1], 0);
    if (io->poller.level) {
        /* Level-triggered: stop watching what nobody waits for, or the
         * same readiness is reported again on every wait. */
        unsigned want = (st->wl[0].head ? SP__EV_IN : 0) | (st->wl[1].head ? SP__EV_OUT : 0);
        if (want != st->interest) {
            st->interest = (uint8_t)want;
            io->poller.ops->interest(&io->poller, ev->fd, st->gen, want);
        }
    }
}

static int poll_hook(sp_sched *s, int64_t timeout_ns)
{
    sp__io *io = s->poll_ctx;
    return io->poller.ops->wait(&io->poller, timeout_ns, on_event, s);
}

static int poll_wake(sp_sched *s)
{
    sp__io *io = s->poll_ctx;
    return io->poller.ops->wake(&io->poller);
}

/* Thread exit (sched_destroy): closes the poller unless an offload job of
 * this thread is still out (a helper would then post to freed memory). */
static int io_fini(sp_sched *s)
{
    sp__io *io = s->poll_ctx;
    pthread_mutex_lock(&io->lock);
    int busy = io->jobs_out > 0;
    pthread_mutex_unlock(&io->lock);
    if (busy)
        return 0;
    io->poller.ops->fini(&io->poller);
    pthread_mutex_destroy(&io->lock);
    free(io->fds);
    free(io);
    s->poll_ctx = NULL;
    s->poll = NULL;
    s->poll_wake = NULL;
    return 1;
}

sp__io *sp__io_open(sp_sched *s)
{
    if (s->poll_ctx != NULL)
        return s->poll_ctx;
    sp__io *io = calloc(1, sizeof *io);
    if (!io) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&io->lock, NULL);
    int kind = s->cfg.poller == SP_POLL_DEFAULT ? SP_POLL_EPOLL : (int)s->cfg.poller;
    int rc = sp__poller_open(&io->poller, kind, s->cfg.epoll_level, &io->fell_back);
    if (rc < 0) {
        free(io);
        errno = -rc;
        return NULL;
    }
    s->poll_ctx = io;
    s->poll_wake = poll_wake;
    s->poll = poll_hook;
    s->poll_fini = io_fini;
    return io;
}

const char *sp_poller_name(void)
{
    sp__io *io = sp__sched()->poll_ctx;
    if (!io)
        return NULL;
    return io->poller.level ? "epoll-level" : io->poller.ops->name;
}

int sp_poller_fallback(void)
{
    sp__io *io = sp__sched()->poll_ctx;
    return io ? io->fell_back : 0;
}

int sp__fd_nonblock(sp_sched *s, int fd)
{
    sp__io *io = sp__io_get(s);
    if (!io)
        return -errno;
    sp__fdstate *st = sp__fd(io, fd);
    if (!st)
        return fd < 0 ? -EBADF : -ENOMEM;
    if (st->nonblock)
        return 0;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    st->nonblock = 1;
    return 0;
}

/* ---- descriptor owners (M:N) ---- */

#define OWNER_SHIFT 8
#define OWNER_NB 1u
#define OWNER_STREAM 2u

/* Forgets what this thread's table knew of fd's number, for a descriptor
 * it has not seen: fresh from socket/accept, closed, or newly this
 * worker's.  drop: first take the number out of the poller, where an
 * earlier period of this worker left it (the kernel drops the epoll
 * registration of a closed descriptor by itself). */
static void fd_forget(sp_sched *s, int fd, int nonblock, int stream, int drop)
{
    sp__io *io = sp__io_get(s);
    sp__fdstate *st = io ? sp__fd(io, fd) : NULL;
    if (!st)
        return;
    if (drop && st->registered)
        io->poller.ops->del(&io->poller, fd);
    st->registered = 0;
    st->interest = 0;
    st->gen++;
    st->nonblock = (uint8_t)nonblock;
    st->stream = (uint8_t)stream;
    st->short_means_drained = (uint8_t)(stream && io->poller.ops == &sp__epoll_ops);
    st->hup = 0;
    st->ready = SP__EV_IN | SP__EV_OUT; /* unknown: try first */
}

int sp__fd_home(sp_sched **sp, int fd)
{
    sp_sched *s = *sp;
    sp__mn *mn = s->mn;
    if (!mn || fd < 0 || (uint32_t)fd >= mn->nfd_owner)
        return 0;
    uint32_t me = (uint32_t)s->w->index + 1;
    uint32_t *slot = &mn->fd_owner[fd];
    uint32_t v = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    for (;;) {
        uint32_t o = v >> OWNER_SHIFT;
        if (sp__likely(o == me))
            return 0;
        if (o != 0)
            break;
        if (__atomic_compare_exchange_n(slot, &v, me << OWNER_SHIFT | (v & 0xff), 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            fd_forget(s, fd, (v & OWNER_NB) != 0, (v & OWNER_STREAM) != 0, 1);
            return 0;
        }
    }
    sp_co *co = s->current;
    if (co->flags & (SP__F_PINNED | SP__F_ROOT | SP__F_SCHED))
        return -EXDEV;
    *sp = sp__move(s, __atomic_load_n(&mn->w[(v >> OWNER_SHIFT) - 1]->s, __ATOMIC_ACQUIRE));
    return 0;
}

void sp__fd_fresh(sp_sched *s, int fd, int nonblock, int stream)
{
    if (s->mn) {
        /* Nobody's until its first wait: the worker whose coroutine first
         * waits on it owns it, wherever it was accepted. */
        if ((uint32_t)fd < s->mn->nfd_owner)
            __atomic_store_n(&s->mn->fd_owner[fd],
                             (nonblock ? OWNER_NB : 0) | (stream ? OWNER_STREAM : 0),
                             __ATOMIC_RELEASE);
        return;
    }
    fd_forget(s, fd, nonblock, stream, 0);
}

/* Registers fd with the poller on its first wait (edge-triggered: once,
 * for good), or widens what level-triggered mode watches. */
static int fd_arm(sp__io *io, int fd, unsigned ev, sp__fdstate **out)
{
    sp__fdstate *st = sp__fd(io, fd);
    if (!st)
        return fd < 0 ? EBADF : ENOMEM;
    if (!st->registered) {
        int rc = io->poller.ops->add(&io->poller, fd, st->gen);
        if (rc < 0)
            return -rc; /* EBADF, or EPERM for a regular file */
        st->registered = 1;
    }
    if (io->poller.level && (st->interest & ev) != ev) {
        st->interest |= (uint8_t)ev;
        int rc = io->poller.ops->interest(&io->poller, fd, st->gen, st->interest);
        if (rc < 0)
            return -rc;
    }
    *out = st;
    return 0;
}

int sp__fd_wait_many(sp_sched *s, const sp__fdwant *want, int n, int64_t deadline)
{
    if (sp__unlikely(s->mn)) {
        /* All of them must be one worker's: the first one's. */
        for (int i = 0; i < n; i++) {
            int rc = sp__fd_home(&s, want[i].fd);
            if (rc < 0)
                return -rc;
            if (i > 0 && (uint32_t)want[i].fd < s->mn->nfd_owner &&
                __atomic_load_n(&s->mn->fd_owner[want[i].fd], __ATOMIC_ACQUIRE) >> OWNER_SHIFT !=
                    (uint32_t)s->w->index + 1)
                return EXDEV;
        }
    }
    sp__io *io = sp__io_get(s);
    if (!io)
        return errno;
    sp_co *co = s->current;
    co->wait_obj = NULL;
    co->wait_unlink = fd_unlink;
    int err = 0;
    for (int i = 0; i < n && !err; i++) {
        sp__fdstate *st;
        err = fd_arm(io, want[i].fd, want[i].ev, &st);
        for (int dir = 0; dir < 2 && !err; dir++) {
            if (!(want[i].ev & (dir ? SP__EV_OUT : SP__EV_IN)))
                continue;
            size_t cap;
            sp__waiter *w = sp__mem_alloc(&s->mem, sizeof *w, &cap);
            if (!w) {
                err = ENOMEM;
                break;
            }
            w->co = co;
            w->fd = want[i].fd;
            w->dir = (uint8_t)dir;
            w->sibling = co->wait_obj;
            co->wait_obj = w;
            wl_push(&st->wl[dir], w);
        }
    }
    if (err) {
        fd_unlink(co);
        co->wait_unlink = NULL;
        return err;
    }
    s->poll_waiters++;
    co->flags |= SP__F_FDWAIT;
    err = sp__wait(s, deadline);
    co->flags &= ~SP__F_FDWAIT;
    s = sp__sched();
    s->poll_waiters--;
    return err;
}

int sp__fd_wait(sp_sched *s, int fd, unsigned ev, int64_t deadline)
{
    sp__fdwant w = {fd, ev};
    return sp__fd_wait_many(s, &w, 1, deadline);
}

/* SP_MAYBE's shortcut: whether fd is registered and its ready bits say
 * the last call found it not ready for ev, so an edge will come.  Moves
 * to fd's worker first (M:N), whose record it reads.  -1 with errno. */
static int known_unready(sp_sched **sp, int fd, unsigned ev)
{
    if (sp__unlikely((*sp)->mn)) {
        int rc = sp__fd_home(sp, fd);
        if (rc < 0) {
            errno = -rc;
            return -1;
        }
    }
    sp__io *io = (*sp)->poll_ctx;
    if (!io || (size_t)fd >= io->nfds)
        return 0;
    const sp__fdstate *st = &io->fds[fd];
    return st->registered && st->nonblock && !(st->ready & ev) && !st->hup;
}

int sp_wait_fd(int fd, int events, int64_t deadline)
{
    int maybe = events & SP_MAYBE;
    events &= ~SP_MAYBE;
    if (fd < 0 || !(events & (SP_READ | SP_WRITE)) || (events & ~(SP_READ | SP_WRITE))) {
        errno = fd < 0 ? EBADF : EINVAL;
        return -1;
    }
    sp_sched *s = sp__sched();
    int rc = sp__fd_nonblock(s, fd);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    unsigned ev = (events & SP_READ ? SP__EV_IN : 0) | (events & SP_WRITE ? SP__EV_OUT : 0);
    /* Readiness is checked first with poll(0): edge-triggered readiness
     * that arrived before the first wait would otherwise be missed.  Not
     * needed (SP_MAYBE) when a call on fd since its registration found
     * it unready: whatever arrived after that raised an edge. */
    int skip_poll = 0;
    if (maybe && (skip_poll = known_unready(&s, fd, ev)) < 0)
        return -1;
    struct pollfd pfd = {.fd = fd,
                         .events = (short)((events & SP_READ ? POLLIN : 0) |
                                           (events & SP_WRITE ? POLLOUT : 0))};
    for (;;) {
        if (!skip_poll && poll(&pfd, 1, 0) > 0) {
            int r = 0;
            if (pfd.revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))
                r |= events & SP_READ;
            if (pfd.revents & (POLLOUT | POLLHUP | POLLERR))
                r |= events & SP_WRITE;
            if (pfd.revents & POLLNVAL) {
                errno = EBADF;
                return -1;
            }
            if (r)
                return r;
        }
        int err = sp__fd_wait(s, fd, ev, deadline); /* moves to fd's worker (M:N) */
        s = sp__sched();
        if (err) {
            errno = err;
            return -1;
        }
        if (maybe)
            return events; /* the poller's word, unconfirmed */
        skip_poll = 0;
    }
}

int sp_close(int fd)
{
    sp_sched *s = sp__sched();
    if (s->mn && fd >= 0 && (uint32_t)fd < s->mn->nfd_owner) {
        /* Its waiters and registration are its owner's to end. */
        if (sp__fd_home(&s, fd) < 0) {
            errno = EXDEV;
            return -1;
        }
        /* Nobody's again before the number can be reused. */
        __atomic_store_n(&s->mn->fd_owner[fd], 0, __ATOMIC_RELEASE);
    }
    sp__io *io = s->poll_ctx;
    if (io && fd >= 0 && (size_t)fd < io->nfds) {
        sp__fdstate *st = &io->fds[fd];
        wake_list(s, &st->wl[0], EBADF);
        wake_list(s, &st->wl[1], EBADF);
        fd_forget(s, fd, 0, 0, 1);
    }
    return close(fd);
}
