/* Built without liburing: the io_uring backend refuses to start, so
 * sp__poller_open falls back to epoll. */
#include "poll/poll.h"

#include <errno.h>

static int ur_init(sp__poller *p)
{
    (void)p;
    return -ENOSYS;
}

const sp__poll_ops sp__uring_ops = {.name = "uring", .init = ur_init};
