/* reuseport: N processes (--workers, default: the CPUs we may use), each a
 * single-threaded coroutine server (the coro model) with a listener of its
 * own on the same port (SO_REUSEPORT).  The kernel spreads new connections
 * over the listeners by a hash of the 4-tuple; the shards share nothing, not
 * even an accept queue, and each has its own descriptor limit.
 *
 * The parent supervises: it holds the port (so --port 0 gives every shard
 * the same port), starts the shards, prints READY once all of them listen,
 * replaces a shard that dies, forwards SIGTERM/SIGINT to them, and exits 0
 * when every shard exited 0.  It never runs the runtime: each shard starts
 * its own after the fork, so no poller or helper thread crosses a fork. */
#define _GNU_SOURCE
#include "models/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The parent looks for dead shards at least this often. */
#define SUPERVISE_MS 500
/* A shard that dies sooner than this after its start is not restarted:
 * it would only die again (a bad option, no memory). */
#define RESTART_MIN_LIFE_MS 1000

typedef struct shard {
    pid_t pid;
    int64_t started;
} shard;

static int ncpus(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

/* Starts a shard that listens on o->port and writes a byte to ready_fd
 * once it does. */
static pid_t start_shard(const sp_server_opts *o, int hold_fd, int ready_fd, int other_fd)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    close(hold_fd);
    if (other_fd >= 0)
        close(other_fd);
    /* A stop of its own: the parent decides when a shard stops. */
    if (sp_server_signals_init() < 0)
        _exit(1);
    _exit(sp__coro_server_run(o, "reuseport", SP_LISTEN_REUSEPORT, ready_fd, 1));
}

static int reuseport_serve(const sp_server_opts *o)
{
    int n = o->workers > 0 ? o->workers : ncpus();
    sp_server_opts so = *o;
    shard *shards;
    int hold, port, ready[2], live = 0, failed = 0, got = 0;

    /* Bound, not listening: it reserves the port (the kernel's choice for
     * --port 0) for the shards' SO_REUSEPORT listeners, and takes no
     * connections itself. */
    hold = sp_server_listen(o, SP_SERVER_REUSEPORT | SP_SERVER_BIND_ONLY, &port);
    if (hold < 0) {
        fprintf(stderr, "spindle serve: bind: %s\n", strerror(errno));
        return 1;
    }
    so.port = port;
    so.runtime.poller = SP_POLL_EPOLL;
    shards = calloc((size_t)n, sizeof *shards);
    if (!shards || pipe2(ready, O_CLOEXEC) < 0) {
        fprintf(stderr, "spindle serve: %s\n", strerror(errno));
        free(shards);
        close(hold);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        shards[i].pid = start_shard(&so, hold, ready[1], ready[0]);
        shards[i].started = sp_now();
        if (shards[i].pid > 0)
            live++;
    }
    close(ready[1]);
    /* One byte per shard that listens; end-of-file when they all wrote or
     * exited. */
    for (;;) {
        char buf[64];
        ssize_t r = read(ready[0], buf, sizeof buf);

        if (r > 0)
            got += (int)r;
        else if (r == 0 || errno != EINTR)
            break;
        if (got >= live)
            break;
    }
    close(ready[0]);
    if (got < n) {
        fprintf(stderr, "spindle serve: %d of %d shards started\n", got, n);
        sp_server_stop();
    } else {
        sp_server_ready(port, "reuseport", NULL);
    }

    while (!sp_server_stopping()) {
        struct pollfd p = {.fd = sp_server_stop_fd(), .events = POLLIN};
        int st;
        pid_t pid;

        poll(&p, 1, SUPERVISE_MS);
        while (!sp_server_stopping() && (pid = waitpid(-1, &st, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (shards[i].pid != pid)
                    continue;
                if (sp_now() - shards[i].started < RESTART_MIN_LIFE_MS * 1000000LL) {
                    fprintf(stderr, "spindle serve: shard %d died at start\n", (int)pid);
                    shards[i].pid = 0;
                    live--;
                    failed++;
                    continue;
                }
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

                shards[i].pid = start_shard(&so, hold, devnull, -1);
                shards[i].started = sp_now();
                if (devnull >= 0)
                    close(devnull);
                if (shards[i].pid <= 0) {
                    live--;
                    failed++;
                }
            }
        }
        if (live == 0)
            break;
    }
    /* Forward the stop, then wait: each shard finishes its requests. */
    for (int i = 0; i < n; i++)
        if (shards[i].pid > 0)
            kill(shards[i].pid, SIGTERM);
    while (live > 0) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);

        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (shards[i].pid != pid)
                continue;
            shards[i].pid = 0;
            live--;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                failed++;
        }
    }
    free(shards);
    close(hold);
    return failed || got < n ? 1 : 0;
}

const sp_model sp_model_reuseport = {
    .name = "reuseport",
    .summary = "N single-threaded coroutine processes, SO_REUSEPORT",
    .serve = reuseport_serve,
};
