/* A plain blocking echo server, one thread per connection, the way it was
 * written before event loops: socket, bind, listen, an accept loop,
 * pthread_create for each connection, and a read/write loop in each
 * thread.  It knows nothing of spindle (no spindle header, not linked with
 * it); the hook tests run it under `spindle run --hook`, where with
 * --threads-as-coroutines all its connections are served by one OS thread.
 *
 *   blocking_echo [--port P]    (P 0 or absent: the kernel picks one)
 *
 * Prints "READY <port>" once listening, as the echo benchmarks expect, and
 * ends on SIGTERM (the default action).  It binds 127.0.0.1 with
 * inet_pton, not getaddrinfo, so that nothing here starts the hook's
 * offload threads. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* As examples/echo: the benchmark compares the two. */
#define ECHO_BUF 16384
/* A thread needs little: the buffer and a few frames. */
#define ECHO_THREAD_STACK (256 * 1024)

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[ECHO_BUF];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || write_all(fd, buf, (size_t)n) < 0)
            break;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: blocking_echo [--port P]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; /* one descriptor a connection */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) {
        perror("blocking_echo: socket");
        return 1;
    }
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) {
        perror("blocking_echo: bind/listen");
        return 1;
    }
    socklen_t alen = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &alen);
    printf("READY %d\n", ntohs(a.sin_port));
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, ECHO_THREAD_STACK);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                usleep(10000); /* out of descriptors: wait for some to close */
                continue;
            }
            perror("blocking_echo: accept");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as examples/echo */
        pthread_t t;
        int err = pthread_create(&t, &attr, serve, (void *)(intptr_t)fd);
        if (err) {
            fprintf(stderr, "blocking_echo: pthread_create: %s\n", strerror(err));
            close(fd);
        }
    }
}
