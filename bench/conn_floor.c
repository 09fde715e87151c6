/* conn_floor: the least a client can do for a request on a connection of
 * its own, the kernel's floor for `ab` and `spindle load --no-keepalive`.
 *
 * usage: conn_floor PORT REQUESTS CONNECTIONS
 *
 * Keeps CONNECTIONS connections to 127.0.0.1:PORT in flight, each for one
 * request: a non-blocking socket, connect, the `Connection: close` request
 * written at once (on loopback the handshake is done inside connect; if it
 * is not, the write waits for EPOLLOUT), reads to end-of-file, close, and
 * the next connection.  TCP_QUICKACK is off before connect, as in spindle
 * load, so the ACK of the SYN-ACK leaves with the request.  One epoll
 * registration per connection, no parser, no timer, no histogram: its CPU
 * time per request (scripts/load-vs-peers.py prints it) is what the kernel
 * charges the client for a connection.  Prints "Requests/sec: R" as wrk
 * does; exits 1 on the first failed request, 2 on a usage error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
static struct sockaddr_in to;
static int ep;
static long started, done, want;
static char *sent; /* by descriptor: the request is written */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fail(const char *what)
{
    fprintf(stderr, "conn_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Writes the request if the connection takes it now.  1 written, 0 not yet. */
static int send_req(int fd)
{
    ssize_t w = write(fd, req, sizeof req - 1);
    if (w == (ssize_t)(sizeof req - 1))
        return sent[fd] = 1;
    if (w < 0 && errno == EAGAIN)
        return 0;
    fail("write"); /* a short write of 56 bytes into an empty socket: no */
    return 0;
}

static void start(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), off = 0;
    if (fd < 0)
        fail("socket");
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof off);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS)
        fail("connect");
    sent[fd] = 0;
    send_req(fd);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail("epoll_ctl");
    started++;
}

static void on_event(int fd, uint32_t events)
{
    char buf[4096];
    if (!sent[fd]) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) || !send_req(fd))
            return;
    }
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0)
            fail("read");
        close(fd); /* end of the answer */
        done++;
        if (started < want)
            start();
        return;
    }
}

int main(int argc, char **argv)
{
    char *e1 = NULL, *e2 = NULL, *e3 = NULL;
    long port = argc == 4 ? strtol(argv[1], &e1, 10) : 0;
    want = argc == 4 ? strtol(argv[2], &e2, 10) : 0;
    long conc = argc == 4 ? strtol(argv[3], &e3, 10) : 0;
    if (argc != 4 || *e1 || *e2 || *e3 || port < 1 || port > 65535 || want < 1 || conc < 1 ||
        conc > 10000) {
        fprintf(stderr, "usage: conn_floor PORT REQUESTS CONNECTIONS (1 to 10000)\n");
        return 2;
    }
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sent = calloc(65536, 1);
    if (!sent || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        fail("set-up");
    double t0 = now_s();
    for (long i = 0; i < conc && started < want; i++)
        start();
    struct epoll_event evs[256];
    while (done < want) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait");
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.fd, evs[i].events);
    }
    printf("Requests/sec: %.0f\n", (double)want / (now_s() - t0));
    return 0;
}
