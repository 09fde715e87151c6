/* epoll backend.  Edge-triggered by default: a descriptor is added once with
 * IN|OUT|RDHUP and stays until it is closed, so a wait costs no epoll_ctl;
 * readiness is remembered by the caller between edges.  Level-triggered
 * mode (for the models that compare the two) watches only what a coroutine
 * waits for, which costs an epoll_ctl whenever that changes. */
#define _GNU_SOURCE
#include "poll/poll.h"
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Events drained per epoll_wait: enough that a busy loop of thousands of
 * connections needs few calls, small enough to stay in cache. */
#define SP__EPOLL_BATCH 512
#define SP__WAKE_DATA UINT64_MAX

typedef struct epoll_impl {
    int have_pwait2;
    struct epoll_event ev[SP__EPOLL_BATCH];
} epoll_impl;

static inline uint64_t pack(int fd, uint32_t gen)
{
    return ((uint64_t)gen << 32) | (uint32_t)fd;
}

static int ep_init(sp__poller *p)
{
    epoll_impl *im = calloc(1, sizeof *im);
    if (!im)
        return -ENOMEM;
    im->have_pwait2 = 1;
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd < 0)
        goto fail_epoll;
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wake_fd < 0)
        goto fail_eventfd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = SP__WAKE_DATA};
    if (epoll_ctl(p->fd, EPOLL_CTL_ADD, p->wake_fd, &ev) != 0)
        goto fail_ctl;
    p->impl = im;
    return 0;
fail_ctl:
    close(p->wake_fd);
fail_eventfd:
    close(p->fd);
fail_epoll:
    free(im);
    return -errno;
}

static void ep_fini(sp__poller *p)
{
    close(p->wake_fd);
    close(p->fd);
    free(p->impl);
}

static int ep_add(sp__poller *p, int fd, uint32_t gen)
{
    struct epoll_event ev = {.data.u64 = pack(fd, gen)};
    ev.events = p->level ? 0 : EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    return epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static int ep_interest(sp__poller *p, int fd, uint32_t gen, unsigned events)
{
    struct epoll_event ev = {.data.u64 = pack(fd, gen)};
    ev.events = (events & SP__EV_IN ? EPOLLIN | EPOLLRDHUP : 0) |
                (events & SP__EV_OUT ? EPOLLOUT : 0);
    return epoll_ctl(p->fd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

static int ep_del(sp__poller *p, int fd)
{
    return epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : -errno;
}

static int ep_wait(sp__poller *p, int64_t timeout_ns, sp__pevent_fn fn, void *ctx)
{
    epoll_impl *im = p->impl;
    int n;
    if (im->have_pwait2) {
        struct timespec ts, *tp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000);
            ts.tv_nsec = (long)(timeout_ns % 1000000000);
            tp = &ts;
        }
        n = epoll_pwait2(p->fd, im->ev, SP__EPOLL_BATCH, tp, NULL);
        if (n < 0 && errno == ENOSYS)
            im->have_pwait2 = 0; /* kernel before 5.11: milliseconds */
    }
    if (!im->have_pwait2) {
        /* Round up so a timer never fires early. */
        int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
        n = epoll_wait(p->fd, im->ev, SP__EPOLL_BATCH, ms);
    }
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        struct epoll_event *e = &im->ev[i];
        sp__pevent pe = {.kind = SP__PE_READY};
        if (e->data.u64 == SP__WAKE_DATA) {
            uint64_t v;
            ssize_t r = read(p->wake_fd, &v, sizeof v);
            (void)r;
            pe.kind = SP__PE_WAKE;
            fn(ctx, &pe);
            continue;
        }
        pe.fd = (int)(uint32_t)e->data.u64;
        pe.gen = (uint32_t)(e->data.u64 >> 32);
        if (e->events & (EPOLLIN | EPOLLRDHUP))
            pe.events |= SP__EV_IN;
        if (e->events & EPOLLOUT)
            pe.events |= SP__EV_OUT;
        if (e->events & (EPOLLERR | EPOLLHUP))
            pe.events |= SP__EV_ERR | SP__EV_IN | SP__EV_OUT;
        if (e->events & (EPOLLRDHUP | EPOLLHUP))
            pe.events |= SP__EV_HUP;
        fn(ctx, &pe);
    }
    return n;
}

static int ep_wake(sp__poller *p)
{
    uint64_t one = 1;
    return write(p->wake_fd, &one, sizeof one) == sizeof one ? 0 : -errno;
}

const sp__poll_ops sp__epoll_ops = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .add = ep_add,
    .interest = ep_interest,
    .del = ep_del,
    .wait = ep_wait,
    .wake = ep_wake,
    .submit_file = NULL,
};
