/* libFuzzer target for the http core.  The input is a byte stream from a
 * client; it is parsed as a connection would (pipelined requests, heads,
 * bodies), once whole and once in pseudo-random pieces derived from the
 * input itself, and the two traces must be identical: any difference, any
 * read past the bytes given (poisoned under ASan), any broken invariant
 * aborts.  Each parsed request also goes through the router, the response
 * writers and the CGI environment builder; the input is also fed to the
 * chunked decoder alone, the CGI output parser and the date parser. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#include "spindle/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits reach every limit path with small inputs. */
static const sp_http_limits fuzz_limits = { 256, 512, 12, 300 };

#define MAX_REQUESTS 32
#define HEADERS 16

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_http: %s:%d: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                 \
            abort();                                                        \
        }                                                                   \
    } while (0)

struct event {
    ssize_t head;        /* head length, or -status, or 0 for incomplete */
    int body_status;     /* 0, -status of the body, or 1 for incomplete */
    uint64_t body_total;
    uint32_t body_hash;
    sp_http_method method;
    bool keep_alive;
    size_t num_headers;
};

struct trace {
    struct event ev[MAX_REQUESTS];
    int n;
};

/* Pieces: each "receive" hands over 1..max bytes, from a seeded LCG. */
struct feeder {
    uint32_t state;
    size_t max;
};

static size_t next_piece(struct feeder *f)
{
    if (f->max == 0)
        return SIZE_MAX; /* whole: everything at once */
    f->state = f->state * 1103515245u + 12345u;
    return 1 + (f->state >> 8) % f->max;
}

static uint32_t fnv(const uint8_t *p, size_t n, uint32_t h)
{
    while (n--)
        h = (h ^ *p++) * 16777619u;
    return h;
}

static void exercise_service(const sp_http_request *req)
{
    static char out[4096];
    static char *envp[64];
    static char envbuf[4096];
    sp_http_action act;
    sp_http_cgi_info info = { "127.0.0.1", 1234, NULL, 8080, -1 };
    sp_http_file_reply fr;
    struct stat st;
    ssize_t n;
    int e;
    size_t i;

    CHECK(req->path && req->path_len > 0);
    CHECK(req->target && req->target_len > 0);
    for (i = 0; i < req->num_headers; i++)
        CHECK(req->headers[i].name_len > 0);
    sp_http_route(req, &act);
    CHECK(act.arg[act.arg_len] == '\0');
    switch (act.kind) {
    case SP_HTTP_ACT_RESPOND:
    case SP_HTTP_ACT_SLEEP:
        CHECK(act.kind != SP_HTTP_ACT_SLEEP || act.sleep_ms <= SP_HTTP_SLEEP_MAX_MS);
        n = sp_http_write_reply(out, sizeof out, req, &act, true,
                                "Sun, 06 Nov 1994 08:49:37 GMT");
        CHECK(n > 0);
        break;
    case SP_HTTP_ACT_STATIC:
        /* what reaches the file system never climbs out of the root */
        CHECK(act.arg[0] != '/' && !strstr(act.arg, "\\") &&
              strcmp(act.arg, "..") != 0 && strncmp(act.arg, "../", 3) != 0 &&
              !strstr(act.arg, "/../") &&
              (act.arg_len < 3 || strcmp(act.arg + act.arg_len - 3, "/..") != 0));
        CHECK(strlen(act.arg) == act.arg_len);
        memset(&st, 0, sizeof st);
        st.st_mode = S_IFREG;
        st.st_size = 1000;
        st.st_mtime = 784111777;
        n = sp_http_static_head(out, sizeof out, req, act.arg, act.arg_len, &st, true,
                                "Sun, 06 Nov 1994 08:49:37 GMT", &fr);
        CHECK(n > 0 || n == -ENOBUFS);
        CHECK(fr.offset + fr.length <= 1000);
        break;
    case SP_HTTP_ACT_CGI:
        CHECK(act.arg_len > 0 && !strchr(act.arg, '/') && act.arg[0] != '.');
        e = sp_http_cgi_env(req, &act, &info, envp, 64, envbuf, sizeof envbuf);
        CHECK(e > 0 || e == -ENOBUFS);
        if (e > 0)
            CHECK(envp[e] == NULL);
        break;
    }
}

/* One connection's worth of requests over data[0, size). */
static void run(const uint8_t *data, size_t size, struct feeder *f, struct trace *t)
{
    char *buf = malloc(size ? size : 1);
    size_t pos = 0, avail = 0;

    CHECK(buf);
    memcpy(buf, data, size);
    t->n = 0;
    while (t->n < MAX_REQUESTS) {
        struct event *e = &t->ev[t->n++];
        sp_http_header h[HEADERS];
        sp_http_request req;
        sp_http_body body;
        ssize_t n;

        memset(e, 0, sizeof *e);
        sp_http_request_init(&req, h, HEADERS, &fuzz_limits);
        for (;;) {
            size_t piece = next_piece(f);

            avail = piece > size - avail ? size : avail + piece;
            if (avail < size)
                POISON(buf + avail, size - avail);
            n = sp_http_parse_request(&req, buf + pos, avail - pos);
            UNPOISON(buf, size);
            if (n != SP_HTTP_AGAIN || avail == size)
                break;
        }
        e->head = n;
        if (n <= 0) {
            CHECK(n == 0 || req.status == -n);
            break;
        }
        CHECK((size_t)n <= avail - pos);
        e->method = req.method;
        e->keep_alive = req.keep_alive;
        e->num_headers = req.num_headers;
        CHECK(req.body_kind != SP_HTTP_BODY_LENGTH ||
              req.content_length <= fuzz_limits.max_body);
        exercise_service(&req);
        pos += (size_t)n;

        sp_http_body_init(&body, &req, &fuzz_limits);
        e->body_hash = 2166136261u;
        while (!sp_http_body_done(&body)) {
            const char *d;
            size_t dl, len;
            char *copy;

            if (pos == avail) {
                size_t piece;

                if (avail == size) {
                    e->body_status = 1;
                    break;
                }
                piece = next_piece(f);
                avail = piece > size - avail ? size : avail + piece;
                continue;
            }
            /* the body decoder keeps no pointer: each piece its own copy */
            len = avail - pos;
            copy = malloc(len);
            CHECK(copy);
            memcpy(copy, buf + pos, len);
            n = sp_http_body_parse(&body, copy, len, &d, &dl);
            if (n < 0) {
                free(copy);
                e->body_status = (int)n;
                break;
            }
            CHECK(n > 0 && (size_t)n <= len);
            CHECK(dl == 0 || (d >= copy && d + dl <= copy + n));
            e->body_hash = fnv((const uint8_t *)d, dl, e->body_hash);
            free(copy);
            pos += (size_t)n;
        }
        e->body_total = body.total;
        CHECK(body.total <= fuzz_limits.max_body);
        if (e->body_status != 0)
            break;
    }
    free(buf);
}

static void compare(const struct trace *a, const struct trace *b)
{
    int i;

    CHECK(a->n == b->n);
    for (i = 0; i < a->n; i++) {
        const struct event *x = &a->ev[i], *y = &b->ev[i];

        CHECK(x->head == y->head);
        CHECK(x->body_status == y->body_status);
        CHECK(x->body_total == y->body_total);
        CHECK(x->body_hash == y->body_hash);
        CHECK(x->method == y->method);
        CHECK(x->keep_alive == y->keep_alive);
        CHECK(x->num_headers == y->num_headers);
    }
}

/* The input as a chunked body on its own, whole and byte by byte. */
static void chunked_alone(const uint8_t *data, size_t size)
{
    sp_http_request req;
    sp_http_body a, b;
    const char *d;
    size_t dl, i, used_a = 0;
    ssize_t ra = 0, rb = 0;

    memset(&req, 0, sizeof req);
    req.body_kind = SP_HTTP_BODY_CHUNKED;
    sp_http_body_init(&a, &req, &fuzz_limits);
    sp_http_body_init(&b, &req, &fuzz_limits);
    while (used_a < size && !sp_http_body_done(&a)) {
        ra = sp_http_body_parse(&a, (const char *)data + used_a, size - used_a, &d, &dl);
        if (ra < 0)
            break;
        used_a += (size_t)ra;
    }
    for (i = 0; i < size && !sp_http_body_done(&b); i++) {
        rb = sp_http_body_parse(&b, (const char *)data + i, 1, &d, &dl);
        if (rb < 0)
            break;
    }
    CHECK((ra < 0) == (rb < 0));
    CHECK(ra >= 0 || ra == rb);
    CHECK(sp_http_body_done(&a) == sp_http_body_done(&b));
    CHECK(a.total == b.total);
}

/* The input as a CGI script's output, whole and in two pieces. */
static void cgi_output(const uint8_t *data, size_t size, const sp_http_request *req)
{
    static char out[16384];
    sp_http_cgi_reply a, b;
    sp_http_framing fr;
    ssize_t ra, rb;
    size_t cut = size / 2;

    sp_http_cgi_reply_init(&a);
    sp_http_cgi_reply_init(&b);
    ra = sp_http_cgi_parse(&a, (const char *)data, size);
    rb = sp_http_cgi_parse(&b, (const char *)data, cut);
    if (rb == SP_HTTP_AGAIN)
        rb = sp_http_cgi_parse(&b, (const char *)data, size);
    CHECK(ra == rb);
    if (ra > 0) {
        CHECK(a.status >= 200 && a.status <= 599 && a.status == b.status);
        CHECK(sp_http_cgi_write_head(out, sizeof out, &a, (const char *)data, req, true,
                                     "Sun, 06 Nov 1994 08:49:37 GMT", &fr) > 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct trace whole, split;
    struct feeder f0 = { 0, 0 }, f1;
    int64_t t;
    uint32_t h = fnv(data, size, 2166136261u);

    run(data, size, &f0, &whole);
    /* piece sizes from 1 up to 1..64 bytes, chosen by the input's hash */
    f1.state = h;
    f1.max = 1 + h % 64;
    run(data, size, &f1, &split);
    compare(&whole, &split);

    chunked_alone(data, size);
    {
        static const char get[] = "GET /cgi-bin/x HTTP/1.1\r\nHost: h\r\n\r\n";
        sp_http_header hh[4];
        sp_http_request req;

        sp_http_request_init(&req, hh, 4, NULL);
        CHECK(sp_http_parse_request(&req, get, sizeof get - 1) > 0);
        cgi_output(data, size, &req);
    }
    if (sp_http_parse_date((const char *)data, size, &t) == 0) {
        char s[SP_HTTP_DATE_LEN + 1];
        int64_t back;

        /* any date we accept formats and parses back to itself */
        sp_http_format_date(s, t);
        CHECK(sp_http_parse_date(s, SP_HTTP_DATE_LEN, &back) == 0 && back == t);
    }
    return 0;
}
