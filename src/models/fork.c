/* fork: the parent accepts; each connection gets a child process of its
 * own (fork, no exec), which serves it with blocking calls and exits.  The
 * oldest model (inetd, early Apache): full isolation, and a fork per
 * connection.  CGI in a child is one more posix_spawn from it.
 *
 * The stop needs no forwarding: children share the parent's stop flag and
 * stop descriptor (server.h), so a SIGTERM to the parent ends their idle
 * keep-alive waits, while a request in flight is finished.  The parent
 * then waits for every child before it exits. */
#define _GNU_SOURCE
#include "models/conn.h"
#include "models/server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* fork() refused (EAGAIN: RLIMIT_NPROC, or memory): the client is refused
 * and the acceptor pauses this long, so a limit is not a busy loop. */
#define FORK_RETRY_MS 10

/* Children are reaped as they exit, by the handler itself: waitpid() is
 * async-signal-safe, and no zombie waits for the next accept. */
static void on_child(int sig)
{
    int err = errno;

    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = err;
}

static void serve_child(sp_conn_server *srv, int lfd, int fd,
                        const struct sockaddr_storage *peer, socklen_t len)
{
    sp_conn *c;

    /* The child reaps its own CGI scripts by pid: the parent's reaper
     * would steal their status. */
    signal(SIGCHLD, SIG_DFL);
    close(lfd);
    c = sp_conn_new(srv);
    if (c) {
        sp_conn_start(c, fd, (const struct sockaddr *)peer, len, NULL);
        sp_conn_serve(c);
    }
    /* _exit: no atexit handlers or stdio buffers of the parent run twice. */
    _exit(0);
}

static int fork_serve(const sp_server_opts *o)
{
    sp_conn_server srv;
    struct sigaction sa;
    int lfd, port, rc;

    lfd = sp_server_listen(o, SP_SERVER_NONBLOCK, &port);
    if (lfd < 0) {
        fprintf(stderr, "spindle serve: listen: %s\n", strerror(errno));
        return 1;
    }
    rc = sp_conn_server_init(&srv, o, &sp_conn_ops_blocking, port);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: %s\n", strerror(-rc));
        close(lfd);
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NOCLDSTOP; /* no SA_RESTART: poll() just looks again */
    sigaction(SIGCHLD, &sa, NULL);
    sp_server_ready(port, "fork", NULL);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len;
        pid_t pid;
        int fd = sp_server_accept(lfd, &peer, &len);

        if (fd < 0) {
            if (errno == ECANCELED)
                break;
            perror("spindle serve: accept");
            continue;
        }
        pid = fork();
        if (pid == 0)
            serve_child(&srv, lfd, fd, &peer, len);
        close(fd);
        if (pid < 0) {
            perror("spindle serve: fork");
            usleep(FORK_RETRY_MS * 1000);
        }
    }
    close(lfd);
    /* Wait for the children serving requests in flight.  The handler is
     * set back first, so the blocking waitpid sees every child. */
    signal(SIGCHLD, SIG_DFL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    sp_conn_server_destroy(&srv);
    return 0;
}

const sp_model sp_model_fork = {
    .name = "fork",
    .summary = "a process per connection (fork), blocking calls",
    .serve = fork_serve,
};
