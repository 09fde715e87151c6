/* The echo load client (echo.h): one thread, one epoll set, every
 * connection a closed loop of send-the-message, read-its-echo.
 *
 * It must cost less than the servers it measures, so per message it does one
 * send and, usually, one recv: sockets are edge-triggered (no epoll_ctl after
 * the first), a connection never reads past the echo it waits for (so after
 * a whole echo its receive queue is empty and the next byte is a fresh edge,
 * with no read to EAGAIN), and nothing is allocated after setup. */
#define _GNU_SOURCE
#include "echo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Events taken from one epoll_wait. */
#define ECHO_BATCH 1024
/* The longest epoll_wait, so the clock is read at least this often even if
 * every connection has stalled. */
#define ECHO_WAIT_MAX_MS 100
/* Descriptors kept for the caller (stdio, the server's pipe, epoll). */
#define ECHO_FD_SPARE 16
/* Big enough for any request size a benchmark would use; the check stops a
 * typo from allocating gigabytes. */
#define ECHO_MSG_MAX (1 << 20)

enum { CONN_CONNECTING, CONN_RUNNING, CONN_DEAD };

typedef struct echo_conn {
    int fd;
    int state;
    int sent; /* bytes of the current message sent */
    int got;  /* bytes of its echo received */
} echo_conn;

typedef struct echo_client {
    int ep;
    echo_conn *conns;
    int nconns;
    int live;      /* connections not dead */
    char *msg;     /* the message, msg_size bytes */
    char *scratch; /* where echoes land before they are compared */
    struct epoll_event *evs; /* ECHO_BATCH of them */
    int msg_size;
    long echoes;
    long errors;
    int first_error;
} echo_client;

static double echo_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long bench_echo_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return -errno;
    }
    return rl.rlim_cur > (rlim_t)1 << 30 ? 1L << 30 : (long)rl.rlim_cur;
}

static void conn_fail(echo_client *c, echo_conn *cn, int err)
{
    close(cn->fd); /* also takes it out of the epoll set */
    cn->fd = -1;
    cn->state = CONN_DEAD;
    c->live--;
    c->errors++;
    if (!c->first_error)
        c->first_error = err;
}

/* Moves one connection's loop on as far as the socket allows without
 * blocking. Returns 0, or the errno that ends the connection. */
static int conn_pump(echo_client *c, echo_conn *cn)
{
    for (;;) {
        while (cn->sent < c->msg_size) {
            ssize_t n = send(cn->fd, c->msg + cn->sent,
                             (size_t)(c->msg_size - cn->sent), MSG_NOSIGNAL);
            if (n > 0)
                cn->sent += (int)n;
            else if (errno == EAGAIN)
                return 0; /* EPOLLOUT will come */
            else if (errno != EINTR)
                return errno;
        }
        /* Asking for no more than the rest of this echo: see the top. */
        while (cn->got < c->msg_size) {
            ssize_t n = recv(cn->fd, c->scratch, (size_t)(c->msg_size - cn->got), 0);
            if (n > 0) {
                if (memcmp(c->scratch, c->msg + cn->got, (size_t)n) != 0)
                    return EBADMSG;
                cn->got += (int)n;
            } else if (n == 0) {
                return EPIPE;
            } else if (errno == EAGAIN) {
                return 0; /* EPOLLIN will come */
            } else if (errno != EINTR) {
                return errno;
            }
        }
        c->echoes++;
        cn->sent = cn->got = 0;
    }
}

static void conn_event(echo_client *c, echo_conn *cn, uint32_t events)
{
    if (cn->state == CONN_DEAD)
        return; /* closed earlier in this batch */
    if (cn->state == CONN_CONNECTING || (events & EPOLLERR)) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            conn_fail(c, cn, err);
            return;
        }
        if (cn->state == CONN_CONNECTING && !(events & (EPOLLOUT | EPOLLHUP)))
            return; /* not writable yet: the connect has not finished */
        cn->state = CONN_RUNNING;
    }
    int err = conn_pump(c, cn);
    if (err)
        conn_fail(c, cn, err);
}

/* Starts a non-blocking connect and adds the socket to the epoll set.
 * Returns 0, or the errno that stopped it (the connection is then counted
 * as failed by the caller). */
static int conn_open(echo_client *c, echo_conn *cn, const struct sockaddr_in *to)
{
    cn->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (cn->fd < 0)
        return errno;
    cn->state = CONN_CONNECTING;
    c->live++;
    /* One write a message, so Nagle would never hold one back, but a
     * partial write followed by its rest would wait for an ACK. */
    int one = 1;
    setsockopt(cn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(cn->fd, (const struct sockaddr *)to, sizeof *to) < 0 &&
        errno != EINPROGRESS)
        return errno;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = cn};
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, cn->fd, &ev) < 0)
        return errno;
    return 0;
}

/* Handles events until `until`, or until every connection is dead.
 * Returns 0, or -errno if epoll_wait itself failed. */
static int client_loop(echo_client *c, double until)
{
    struct epoll_event *evs = c->evs;
    for (;;) {
        double left = until - echo_now_s();
        if (left <= 0 || c->live == 0)
            return 0;
        int ms = left * 1000 < ECHO_WAIT_MAX_MS ? (int)(left * 1000) + 1 : ECHO_WAIT_MAX_MS;
        int n = epoll_wait(c->ep, evs, ECHO_BATCH, ms);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n; i++)
            conn_event(c, evs[i].data.ptr, evs[i].events);
    }
}

/* Accepts only a numeric IPv4 address on loopback: a benchmark must never
 * load another machine by mistake. */
static int client_addr(const char *host, int port, struct sockaddr_in *to)
{
    memset(to, 0, sizeof *to);
    to->sin_family = AF_INET;
    to->sin_port = htons((uint16_t)port);
    if (!host || port <= 0 || port > 65535 || inet_pton(AF_INET, host, &to->sin_addr) != 1)
        return -EINVAL;
    if ((ntohl(to->sin_addr.s_addr) >> 24) != 127)
        return -EINVAL;
    return 0;
}

static int client_setup(echo_client *c, int conns, int msg_size)
{
    memset(c, 0, sizeof *c);
    c->ep = -1;
    long limit = bench_echo_raise_nofile();
    if (limit < 0)
        return (int)limit;
    if (conns > limit - ECHO_FD_SPARE)
        return -EMFILE;
    c->msg_size = msg_size;
    c->msg = malloc(2 * (size_t)msg_size);
    c->conns = calloc((size_t)conns, sizeof *c->conns);
    c->evs = calloc(ECHO_BATCH, sizeof *c->evs);
    if (!c->msg || !c->conns || !c->evs)
        return -ENOMEM;
    c->scratch = c->msg + msg_size;
    /* A pattern that does not repeat every few bytes, so an echo that is
     * shifted or out of order does not compare equal. */
    for (int i = 0; i < msg_size; i++)
        c->msg[i] = (char)('a' + (i * 7 + i / 26) % 26);
    for (int i = 0; i < conns; i++)
        c->conns[i].fd = -1;
    c->nconns = conns;
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    return c->ep < 0 ? -errno : 0;
}

static void client_teardown(echo_client *c)
{
    for (int i = 0; c->conns && i < c->nconns; i++)
        if (c->conns[i].fd >= 0)
            close(c->conns[i].fd);
    if (c->ep >= 0)
        close(c->ep);
    free(c->evs);
    free(c->conns);
    free(c->msg);
}

int bench_echo_client_run(const char *host, int port, int conns, int msg_size,
                          double seconds, bench_echo_result *res)
{
    struct sockaddr_in to;
    echo_client c;

    memset(res, 0, sizeof *res);
    if (client_addr(host, port, &to) < 0 || conns < 1 || msg_size < 1 ||
        msg_size > ECHO_MSG_MAX || !(seconds > 0))
        return -EINVAL;
    int ret = client_setup(&c, conns, msg_size);
    if (ret < 0)
        goto out;

    double start = echo_now_s();
    for (int i = 0; i < conns; i++) {
        int err = conn_open(&c, &c.conns[i], &to);
        if (err) {
            if (c.conns[i].fd < 0) { /* no socket: count it by hand */
                c.errors++;
                c.first_error = c.first_error ? c.first_error : err;
            } else {
                conn_fail(&c, &c.conns[i], err);
            }
        }
    }
    ret = client_loop(&c, start + BENCH_ECHO_WARMUP_S);
    double t0 = echo_now_s();
    long base = c.echoes;
    if (ret == 0)
        ret = client_loop(&c, t0 + seconds);
    double t1 = echo_now_s();
    if (ret < 0)
        goto out;

    /* A connect still pending after the whole run failed as surely as a
     * refused one, only more slowly. */
    for (int i = 0; i < conns; i++)
        if (c.conns[i].state == CONN_CONNECTING)
            conn_fail(&c, &c.conns[i], ETIMEDOUT);
    res->echoes = c.echoes - base;
    res->msgs_per_sec = t1 > t0 ? (double)res->echoes / (t1 - t0) : 0;
    if (c.errors == conns)
        ret = -c.first_error;
out:
    res->errors = c.errors;
    res->first_error = c.first_error;
    client_teardown(&c);
    return ret;
}

int bench_echo_client(const char *host, int port, int conns, int msg_size,
                      double seconds, double *msgs_per_sec, long *errors)
{
    bench_echo_result res;
    int ret = bench_echo_client_run(host, port, conns, msg_size, seconds, &res);
    if (msgs_per_sec)
        *msgs_per_sec = res.msgs_per_sec;
    if (errors)
        *errors = res.errors;
    return ret;
}
