/* The echo benchmarks of `spindle micro`: a TCP echo server (spindle's
 * examples/echo, or a peer built on libuv or libevent) against a load client,
 * on 127.0.0.1, with the server pinned to one CPU and the client to another.
 *
 *   echo_rtt   one connection, ping-pong of 64-byte messages: round trips
 *              per second (msg/s)
 *   echo_1000  1,000 connections, each a closed ping-pong loop of 64-byte
 *              messages: echoes per second over all of them (msg/s)
 *
 * A server program takes `--port P` (bind 127.0.0.1), prints `READY <port>`
 * on stdout, flushed, once it listens, and exits on SIGTERM. */
#ifndef SP_BENCH_ECHO_H
#define SP_BENCH_ECHO_H

#include <stdio.h>

/* 64 bytes: a small request, so the figure is the per-message cost of the
 * event loop and the system calls, not of copying. */
#define BENCH_ECHO_MSG_SIZE 64
/* Not counted: connecting, the servers' first accepts, cold caches. */
#define BENCH_ECHO_WARMUP_S 0.2
/* Measured seconds a run (after the warm-up); bench_echo_run does `runs`. */
#define BENCH_ECHO_RUN_S 1.0

/* What one client run saw. */
typedef struct bench_echo_result {
    double msgs_per_sec; /* counted echoes / measured seconds */
    long echoes;         /* echoes completed after the warm-up */
    long errors;         /* connections that failed or never connected */
    int first_error;     /* errno of the first failure, 0 if none: EPIPE when
                          * the server closed a connection, EBADMSG when it
                          * echoed other bytes than were sent, ETIMEDOUT when
                          * a connection was still not up at the end */
} bench_echo_result;

/* Load client: opens `conns` connections to host:port (host a numeric
 * address in 127.0.0.0/8), keeps each in a closed ping-pong loop of
 * msg_size-byte messages for BENCH_ECHO_WARMUP_S, not counted, then for
 * `seconds`, counted, and closes them. One thread, epoll, edge-triggered;
 * raises RLIMIT_NOFILE to its hard limit first. A failed connection is
 * counted and closed, not retried. Returns 0, or -errno: -EINVAL (bad
 * argument or a host off loopback), -EMFILE (conns over the descriptor
 * limit), or the first connection's error when every one of them failed. */
int bench_echo_client_run(const char *host, int port, int conns, int msg_size,
                          double seconds, bench_echo_result *res);

/* The same, giving only the rate and the failed connections. */
int bench_echo_client(const char *host, int port, int conns, int msg_size,
                      double seconds, double *msgs_per_sec, long *errors);

/* Raises the soft RLIMIT_NOFILE to the hard one. Returns the soft limit now
 * in force, or -errno. */
long bench_echo_raise_nofile(void);

/* Runs `bench` (echo_rtt or echo_1000) against server_argv (a NULL-ended
 * argv; `--port P` is appended), started on the first CPU the calling thread
 * may use, the client on the second one (the calling thread's affinity is
 * restored afterwards; on a single CPU nothing is pinned). After its READY,
 * `runs` client runs of BENCH_ECHO_RUN_S each; one row with the median, min
 * and max is printed on out as `impl` (bench_print), or a SKIP line with the
 * reason when the server does not start within 5 s, dies, or any connection
 * fails in any run (a figure from fewer connections than asked for is not
 * the benchmark). The server is then sent SIGTERM, and SIGKILL 2 s later.
 * Returns 1 when a row was printed, 0 for a SKIP, -EINVAL (nothing printed)
 * for an unknown bench. */
int bench_echo_run(const char *bench, const char *impl, char *const server_argv[],
                   int runs, int json, FILE *out);

/* Runs the peer servers (peer_echo_libuv as libuv/loop, peer_echo_libevent as
 * libevent/loop, found as bench_peer_find does) through bench_echo_run for
 * `bench`, or for both benches when NULL, grouped by bench; a peer that was
 * not built gets a SKIP line naming its package. Returns the rows printed. */
int bench_echo_peers(const char *bench, int runs, int json, FILE *out);

/* One table line saying how the echo benches are run (pinning, message
 * size, durations); nothing in JSON mode. */
void bench_echo_note(FILE *out, int json);

#endif
