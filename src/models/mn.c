/* mn: the coro model on the M:N runtime: --workers N threads (default: the
 * CPUs the process may use) run the coroutines, one per connection, each
 * worker from its own queues, idle workers stealing from busy ones.  The
 * server is coro's (sp__coro_server_run); --workers 1 is coro on one
 * thread.
 *
 * Accepting: one listener and one acceptor coroutine.  Each accepted
 * connection is spawned as a coroutine of its own; a spawn goes first to
 * the acceptor's worker (its runnext), and when the acceptor takes a burst
 * in one go, the earlier children are pushed on to its queue, where idle
 * workers steal them.  A connection's descriptor then belongs to the
 * worker on which its coroutine first does I/O, and the connection is
 * served there from then on: a coroutine its descriptor's poller wakes
 * stays on that worker's own queue, out of thieves' reach (a stolen one
 * would only move back for its next read, io/fd.c).
 *
 * Why not one acceptor per worker: a descriptor belongs to one worker's
 * poller, so several acceptors on one listener would all move to its
 * worker (or fail with EXDEV if pinned); and the runtime has no way to
 * start a coroutine on a chosen worker, which a listener per worker
 * (SO_REUSEPORT) would need.  The cost of this choice: a connection stays
 * on the worker that first ran it, so connections that arrive one at a
 * time, while the other workers sleep, all land on the acceptor's worker;
 * a burst (a load generator's connections, or a busy acceptor) spreads.
 *
 * Shared state (coro.c): the pool of closed connections and the list of
 * idle connections that a stop ends are under one mutex held across no
 * park; the Date cache is per connection. */
#include "models/server.h"

#include <stdio.h>

static int mn_serve(const sp_server_opts *o)
{
    sp_server_opts mo = *o;

    /* serve.c bounds --workers for every model; the runtime's own bound is
     * lower. */
    if (o->workers > SP_MAX_WORKERS) {
        fprintf(stderr,
                "spindle serve: --workers: '%d' is more workers than the M:N runtime runs "
                "(1-%d)\n(`spindle serve --help` lists the options)\n",
                o->workers, SP_MAX_WORKERS);
        return 2;
    }
    mo.runtime.poller = SP_POLL_EPOLL;
    return sp__coro_server_run(&mo, "mn", 0, -1, o->workers);
}

const sp_model sp_model_mn = {
    .name = "mn",
    .summary = "M:N: a coroutine per connection on --workers threads (default: CPUs)",
    .serve = mn_serve,
};
