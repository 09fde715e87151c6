/* peer_echo_libevent: a single-threaded TCP echo server on libevent 2.1
 * (libevent-dev), the `libevent/loop` rows of echo_rtt and echo_1000
 * (bench/echo.c runs it).
 *
 *   peer_echo_libevent --port P   listens on 127.0.0.1:P (0: any free
 *                                 port), prints `READY <port>`, serves until
 *                                 SIGTERM or SIGINT, then frees everything
 *                                 and exits 0
 *
 * Written with libevent's plain events: an evconnlistener accepts, each
 * connection has a persistent read event whose callback reads into the
 * connection's buffer and writes the echo straight back; only when the
 * socket will not take it all does a write event carry the rest, with
 * reading paused meanwhile. The other idiomatic way, a bufferevent whose
 * read callback moves its input buffer to its output, was about a fifth
 * slower on both benches when we tried it (2-core VM, same run: echo_rtt
 * 8.1-8.4k against 10.0-12.4k msg/s, echo_1000 37.7-38.0k against
 * 45.8-46.5k): every message goes through two evbuffers and the write
 * waits for the next loop pass, a cost of that layer, not of the loop. */
#define _GNU_SOURCE
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The kernel's listen queue is capped by net.core.somaxconn (4096 here);
 * asking for that much lets 1,000 connects land before the first accept. */
#define ECHO_BACKLOG 4096
/* Far more than one 64-byte message; a bigger read just takes what the
 * kernel has, and the pages past the first are never touched. */
#define ECHO_BUF_SIZE 16384

typedef struct echo_conn {
    struct echo_conn *prev, *next; /* every open connection, to free at exit */
    struct event *rd, *wr;
    evutil_socket_t fd;
    size_t off, len; /* the part of buf still to be written */
    char buf[ECHO_BUF_SIZE];
} echo_conn;

typedef struct echo_server {
    struct event_base *base;
    echo_conn head; /* sentinel of the connection list */
} echo_server;

static void conn_free(echo_conn *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    if (c->rd)
        event_free(c->rd);
    if (c->wr)
        event_free(c->wr);
    evutil_closesocket(c->fd);
    free(c);
}

/* Writes what is left of the last read. Returns 1 when all of it went out,
 * 0 when the socket is full, -1 when the connection is broken. */
static int conn_flush(echo_conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n > 0)
            c->off += (size_t)n;
        else if (errno == EAGAIN)
            return 0;
        else if (errno != EINTR)
            return -1;
    }
    return 1;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    echo_conn *c = arg;
    (void)fd, (void)what;
    /* All out: back to reading. */
    int done = conn_flush(c);
    if (done < 0 || (done && (event_del(c->wr) < 0 || event_add(c->rd, NULL) < 0)))
        conn_free(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    echo_conn *c = arg;
    (void)what;
    ssize_t n = recv(fd, c->buf, sizeof c->buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_free(c); /* EOF or a reset */
        return;
    }
    c->off = 0;
    c->len = (size_t)n;
    /* The socket is full: stop reading until the rest is out, so the
     * buffer is not overwritten under it. */
    int done = conn_flush(c);
    if (done < 0 || (!done && (event_del(c->rd) < 0 || event_add(c->wr, NULL) < 0)))
        conn_free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *addr, int addrlen, void *arg)
{
    echo_server *s = arg;
    (void)l, (void)addr, (void)addrlen;
    echo_conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->fd = fd;
    c->next = s->head.next;
    c->prev = &s->head;
    c->next->prev = c;
    s->head.next = c;
    /* Same as the other servers and the client: an echo that goes out in
     * two writes must not wait for an ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wr = event_new(s->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (!c->rd || !c->wr || event_add(c->rd, NULL) < 0)
        conn_free(c);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what; /* SIGTERM and SIGINT both mean stop */
    event_base_loopbreak(arg);
}

static int parse_port(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--port") == 0) {
        char *end;
        long p = strtol(argv[2], &end, 10);
        if (*argv[2] && !*end && p >= 0 && p <= 65535)
            return (int)p;
    }
    fprintf(stderr, "usage: %s --port PORT\n", argv[0]);
    exit(2);
}

int main(int argc, char **argv)
{
    int port = parse_port(argc, argv);
    echo_server s = {0};
    struct evconnlistener *l = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in bound = {0};
    socklen_t len = sizeof bound;
    int ret = 1;

    s.head.next = s.head.prev = &s.head;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s.base = event_base_new();
    if (!s.base) {
        fprintf(stderr, "peer_echo_libevent: event_base_new failed\n");
        goto fail_base;
    }
    l = evconnlistener_new_bind(s.base, on_accept, &s,
                                LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                    LEV_OPT_CLOSE_ON_EXEC,
                                ECHO_BACKLOG, (struct sockaddr *)&addr, sizeof addr);
    if (!l) {
        fprintf(stderr, "peer_echo_libevent: listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        goto fail_listener;
    }
    sigterm = evsignal_new(s.base, SIGTERM, on_signal, s.base);
    sigint = evsignal_new(s.base, SIGINT, on_signal, s.base);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 ||
        evsignal_add(sigint, NULL) < 0) {
        fprintf(stderr, "peer_echo_libevent: cannot catch SIGTERM/SIGINT\n");
        goto fail_signals;
    }
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &len) < 0) {
        fprintf(stderr, "peer_echo_libevent: getsockname: %s\n", strerror(errno));
        goto fail_signals;
    }

    printf("READY %d\n", ntohs(bound.sin_port));
    fflush(stdout);
    ret = event_base_dispatch(s.base) < 0;

    for (echo_conn *c = s.head.next, *next; c != &s.head; c = next) {
        next = c->next;
        conn_free(c);
    }
fail_signals:
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    evconnlistener_free(l);
fail_listener:
    event_base_free(s.base);
fail_base:
    libevent_global_shutdown();
    return ret;
}
