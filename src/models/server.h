/* What every server model needs around its connections: the listener, the
 * stop that SIGTERM/SIGINT ask for, and the READY line.  Internal to the
 * models layer (src/models); the connection loop itself is in conn.h.
 *
 * The stop state is the one process-wide thing here, because a signal is:
 * a flag in a MAP_SHARED page and a pipe, both made before any fork, so
 * that a stop asked in one process of a process model (fork, prefork) is
 * seen by all of them without forwarding signals.
 *
 *     sp_server_signals_init();            // before fork / threads
 *     lfd = sp_server_listen(o, SP_SERVER_NONBLOCK, &port);
 *     sp_server_ready(port, "thread", NULL);
 *     while ((fd = sp_server_accept(lfd, &peer, &len)) >= 0) ...
 *     // accept failed with ECANCELED: stopping; finish what is in flight
 */
#ifndef SP_MODELS_SERVER_H
#define SP_MODELS_SERVER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "models/model.h"

/* Installs the stop: SIGTERM and SIGINT set the stop flag and make the stop
 * descriptor readable; SIGPIPE is ignored (a peer that vanishes is an EPIPE
 * to handle, not a death).  Call it once before forking or starting
 * threads; call it again in a forked child that wants a stop of its own
 * (the reuseport shards).  Returns 0 or -errno. */
int sp_server_signals_init(void);

/* True once a stop was asked in this process or in one sharing its stop
 * (a parent or sibling of a fork, unless re-initialised).  One load: cheap
 * enough for every request. */
bool sp_server_stopping(void);

/* A descriptor that becomes readable once a stop is asked and stays so:
 * poll() it, or sp_wait_fd() it in a coroutine; never read it (other
 * processes may be watching the same one).  -1 before init. */
int sp_server_stop_fd(void);

/* Asks for a stop, as SIGTERM does.  Async-signal-safe. */
void sp_server_stop(void);

/* sp_server_listen() flags. */
#define SP_SERVER_NONBLOCK  1 /* an O_NONBLOCK listener (poll, then accept4) */
#define SP_SERVER_REUSEPORT 2 /* SO_REUSEPORT, to share the port with shards */
#define SP_SERVER_BIND_ONLY 4 /* bind, do not listen: holds a port number */

/* Binds o->host:o->port (SO_REUSEADDR, close-on-exec) and listens with
 * o->backlog, using plain system calls and no runtime (so a process may
 * fork after it).  Stores the bound port (o->port may be 0) in *port.
 * Returns the descriptor, or -1 with errno (getaddrinfo failures as
 * ENOENT/EINVAL). */
int sp_server_listen(const sp_server_opts *o, int flags, int *port);

/* The bound port of a listening socket, or -1 with errno. */
int sp_server_port(int fd);

/* accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) for the blocking models, on an
 * SP_SERVER_NONBLOCK listener: waits with poll() on the listener and the
 * stop descriptor.  Out of descriptors it backs off (1 ms doubling to
 * 100 ms) instead of spinning.  Returns the connection, or -1 with errno
 * ECANCELED once stopping, or another accept error. */
int sp_server_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len);

/* Prints "READY <port> <model>" (and " <extra>" when not NULL) on stdout
 * and flushes it: the line tests and scripts wait for. */
void sp_server_ready(int port, const char *model, const char *extra);

/* Reaps every child that has exited, without waiting.  Returns how many,
 * and the count of those that did not exit with status 0 in *failed (may
 * be NULL). */
int sp_server_reap(int *failed);

/* The coroutine server shared by coro, uring, reuseport and mn (coro.c):
 * one coroutine per connection, under o->runtime on `workers` threads (1:
 * the calling thread; N > 1, or 0 for one per CPU the process may use: the
 * M:N runtime).  listen_flags are sp_listen_tcp() flags
 * (SP_LISTEN_REUSEPORT for a shard).  `model` names it on the READY line;
 * with ready_fd >= 0 it writes one byte there instead of printing READY (a
 * shard tells its parent).  Returns the exit status. */
int sp__coro_server_run(const sp_server_opts *o, const char *model,
                        int listen_flags, int ready_fd, int workers);

#endif
