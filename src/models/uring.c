/* uring: the coro model on the io_uring poller.  The connection code is the
 * same; only the wait differs: readiness arrives through multishot poll
 * requests on the ring, waits and registrations share one io_uring_enter,
 * and regular-file I/O goes to the ring instead of helper threads.  Where
 * the kernel refuses io_uring (a sysctl, a seccomp filter, an old kernel)
 * the runtime falls back to epoll, and the READY line says so:
 * "READY <port> uring poller=epoll". */
#include "models/server.h"

static int uring_serve(const sp_server_opts *o)
{
    sp_server_opts uo = *o;

    uo.runtime.poller = SP_POLL_URING;
    return sp__coro_server_run(&uo, "uring", 0, -1, 1);
}

const sp_model sp_model_uring = {
    .name = "uring",
    .summary = "one thread, a coroutine per connection, io_uring",
    .serve = uring_serve,
};
