/* The table of backends and the fallback from io_uring to epoll. */
#define _GNU_SOURCE
#include "poll/poll.h"
#include "common.h"

#include <errno.h>
#include <spindle.h>
#include <string.h>

int sp__poller_open(sp__poller *p, int kind, int level, int *fell_back)
{
    memset(p, 0, sizeof *p);
    p->fd = p->wake_fd = -1;
    *fell_back = 0;
    if (kind == SP_POLL_URING && !level) {
        p->ops = &sp__uring_ops;
        int rc = p->ops->init(p);
        if (rc == 0)
            return 0;
        /* Old kernel, seccomp, io_uring_disabled: epoll serves the same. */
        memset(p, 0, sizeof *p);
        *fell_back = -rc;
    }
    p->ops = &sp__epoll_ops;
    p->level = level;
    return p->ops->init(p);
}
