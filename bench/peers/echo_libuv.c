/* peer_echo_libuv: a single-threaded TCP echo server on libuv (libuv1-dev),
 * the `libuv/loop` rows of echo_rtt and echo_1000 (bench/echo.c runs it).
 *
 *   peer_echo_libuv --port P   listens on 127.0.0.1:P (0: any free port),
 *                              prints `READY <port>`, serves until SIGTERM
 *                              or SIGINT, then closes everything and exits 0
 *
 * Written as a libuv program is: a uv_tcp_t a connection, uv_read_start with
 * the connection's own buffer, and the echo sent with uv_try_write, falling
 * back to a queued uv_write (reading paused until it completes, so the
 * buffer is not overwritten under it) when the socket will not take it all
 * at once. The try-first write is what libuv's users that care about speed
 * do (Node's stream layer does); queueing every echo would add a callback
 * per message that a server written today would not pay. */
#define _GNU_SOURCE
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The kernel's listen queue is capped by net.core.somaxconn (4096 here);
 * asking for that much lets 1,000 connects land before the first accept. */
#define ECHO_BACKLOG 4096
/* Far more than one 64-byte message; a bigger read just takes what the
 * kernel has, and the pages past the first are never touched. */
#define ECHO_BUF_SIZE 16384

typedef struct echo_conn {
    uv_tcp_t tcp; /* first: a uv_handle_t * to it is a echo_conn * */
    uv_write_t req;
    char buf[ECHO_BUF_SIZE];
} echo_conn;

static void on_close_conn(uv_handle_t *h)
{
    free(h->data);
}

static void conn_close(echo_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_close_conn);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    echo_conn *c = h->data;
    (void)suggested; /* ours is big enough, whatever libuv suggests */
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    echo_conn *c = req->data;
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    echo_conn *c = s->data;
    (void)buf; /* always c->buf, from on_alloc */
    if (nread == 0)
        return; /* EAGAIN, as libuv reports it */
    if (nread < 0) {
        conn_close(c); /* UV_EOF or a reset */
        return;
    }
    uv_buf_t out = uv_buf_init(c->buf, (unsigned)nread);
    int n = uv_try_write(s, &out, 1);
    if (n == nread)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    if (n > 0) {
        out.base += n;
        out.len -= (size_t)n;
    }
    uv_read_stop(s);
    c->req.data = c;
    if (uv_write(&c->req, s, &out, 1, on_write) < 0)
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return; /* EMFILE and the like: the client sees the failure */
    echo_conn *c = malloc(sizeof *c);
    if (!c)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    /* Same as the other servers and the client: an echo that goes out in
     * two writes must not wait for an ACK. */
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* Only connections carry data (their echo_conn); the listener and the
 * signal handles live in main's frame. */
static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    uv_close(h, h->data ? on_close_conn : NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum; /* SIGTERM and SIGINT both mean stop */
    uv_walk(sig->loop, close_walk, NULL);
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

static int fail(const char *what, int err)
{
    fprintf(stderr, "peer_echo_libuv: %s: %s\n", what, uv_strerror(err));
    return 1;
}

int main(int argc, char **argv)
{
    int port = parse_port(argc, argv);
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_signal_t sigterm, sigint;
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    int err;

    /* uv_tcp_bind sets SO_REUSEADDR itself on Unix. */
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &server);
    server.data = NULL;
    if ((err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0)) < 0)
        return fail("bind", err);
    if ((err = uv_listen((uv_stream_t *)&server, ECHO_BACKLOG, on_connection)) < 0)
        return fail("listen", err);
    if ((err = uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len)) < 0)
        return fail("getsockname", err);

    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    sigterm.data = sigint.data = NULL;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);

    printf("READY %d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);

    uv_run(loop, UV_RUN_DEFAULT);
    /* Every handle is closed by now: uv_run returns once none is active
     * and their close callbacks have run. */
    err = uv_loop_close(loop);
    return err < 0 ? fail("loop close", err) : 0;
}
