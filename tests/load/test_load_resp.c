/* The load generator's response parser: Content-Length, chunked and
 * until-close bodies, whole and split at every byte, keep-alive decisions,
 * and malformed responses refused (counted as read errors by the engine). */
#include "sp_test.h"

#include "load/resp.h"

/* What parsing a whole buffer gave. */
typedef struct outcome {
    int rc;          /* 0 done, 1 needs more, -1 malformed */
    size_t used;     /* bytes of the response */
    int status;
    int close;
} outcome;

/* Feeds buf in pieces of `step` bytes (0: whole), as a connection would:
 * unconsumed bytes are presented again with the next ones.  eof: the peer
 * closes after the last byte. */
static outcome run(const char *buf, size_t len, size_t step, int head_only, int eof)
{
    sp__resp r;
    sp__resp_init(&r, head_only);
    size_t base = 0, avail = 0; /* buf[base, avail) is what the caller holds */
    outcome o = {1, 0, 0, 0};
    while (avail < len || base < avail) {
        size_t more = step ? step : len;
        avail = avail + more > len ? len : avail + more;
        ssize_t n = sp__resp_feed(&r, buf + base, avail - base);
        if (n < 0) {
            o.rc = -1;
            return o;
        }
        base += (size_t)n;
        if (r.done) {
            o.rc = 0;
            o.used = base;
            o.status = r.status;
            o.close = r.close;
            return o;
        }
        if (avail == len)
            break;
    }
    if (eof) {
        o.rc = sp__resp_eof(&r) ? 0 : 1;
        o.used = len;
        o.status = r.status;
        o.close = r.close;
    }
    return o;
}

#define S(lit) lit, sizeof(lit) - 1

/* Every way of splitting gives the same outcome as the whole. */
static void check_all_splits(const char *buf, size_t len, int head_only, int eof, int want_rc,
                             size_t want_used, int want_status, int want_close)
{
    for (size_t step = 0; step <= len; step++) {
        if (step > 64 && step < len)
            step = len; /* the short steps find the split bugs */
        outcome o = run(buf, len, step, head_only, eof);
        if (o.rc != want_rc)
            fail_msg("step %zu: rc %d, expected %d, for:\n%.*s", step, o.rc, want_rc,
                     (int)len, buf);
        if (want_rc == 0 && (o.used != want_used || o.status != want_status ||
                             o.close != want_close))
            fail_msg("step %zu: used %zu status %d close %d, expected %zu %d %d, for:\n%.*s",
                     step, o.used, o.status, o.close, want_used, want_status, want_close,
                     (int)len, buf);
    }
}

static void test_content_length(void **state)
{
    const char resp[] = "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 14\r\n\r\n"
                        "Hello, World!\n";
    check_all_splits(S(resp), 0, 0, 0, sizeof resp - 1, 200, 0);
    /* A second response after it is not consumed. */
    const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 N\r\n";
    outcome o = run(S(two), 0, 0, 0);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.used, strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
    /* Zero length, and header names in any case. */
    check_all_splits(S("HTTP/1.1 404 Not Found\r\ncontent-LENGTH: 0\r\n\r\n"), 0, 0, 0,
                     strlen("HTTP/1.1 404 Not Found\r\ncontent-LENGTH: 0\r\n\r\n"), 404, 0);
    /* Incomplete body: needs more; cut by EOF: not done. */
    const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    check_all_splits(S(cut), 0, 0, 1, 0, 0, 0);
    check_all_splits(S(cut), 0, 1, 1, 0, 0, 0);
}

static void test_chunked(void **state)
{
    const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nHello\r\n"
                        "8;ext=1\r\n, World!\r\n"
                        "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                        "0\r\n"
                        "Trailer-A: x\r\n"
                        "\r\n";
    check_all_splits(S(resp), 0, 0, 0, sizeof resp - 1, 200, 0);
    /* gzip, chunked: framed by the last coding. */
    const char gz[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
                      "0\r\n\r\n";
    check_all_splits(S(gz), 0, 0, 0, sizeof gz - 1, 200, 0);
    /* Bare LF line ends are read leniently. */
    const char lf[] = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n";
    check_all_splits(S(lf), 0, 0, 0, sizeof lf - 1, 200, 0);
    /* Chunked wins over a Content-Length beside it (RFC 9112 §6.3). */
    const char both[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    check_all_splits(S(both), 0, 0, 0, sizeof both - 1, 200, 0);
}

static void test_keepalive_decisions(void **state)
{
    check_all_splits(S("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), 0,
                     0, 0, strlen("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
                                  "0\r\n\r\n"),
                     200, 1);
    check_all_splits(S("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: "
                       "0\r\n\r\n"),
                     0, 0, 0,
                     strlen("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-"
                            "Length: 0\r\n\r\n"),
                     200, 1);
    /* HTTP/1.0: close unless keep-alive is said. */
    check_all_splits(S("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), 0, 0, 0,
                     strlen("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), 200, 1);
    check_all_splits(S("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: "
                       "0\r\n\r\n"),
                     0, 0, 0,
                     strlen("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: "
                            "0\r\n\r\n"),
                     200, 0);
}

static void test_bodies_without_length(void **state)
{
    /* No length, no chunking: the body runs to the close. */
    const char resp[] = "HTTP/1.1 200 OK\r\n\r\nsome body";
    check_all_splits(S(resp), 0, 1, 0, sizeof resp - 1, 200, 1);
    check_all_splits(S(resp), 0, 0, 1, 0, 0, 0); /* needs the close */
    /* HEAD, 204 and 304 have no body whatever the headers say. */
    const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n";
    check_all_splits(S(head), 1, 0, 0, sizeof head - 1, 200, 0);
    const char nc[] = "HTTP/1.1 204 No Content\r\n\r\n";
    check_all_splits(S(nc), 0, 0, 0, sizeof nc - 1, 204, 0);
    const char nm[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n";
    check_all_splits(S(nm), 0, 0, 0, sizeof nm - 1, 304, 0);
    /* An interim 100 Continue is skipped; the final response counts. */
    const char cont[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                        "Content-Length: 2\r\n\r\nok";
    check_all_splits(S(cont), 0, 0, 0, sizeof cont - 1, 201, 0);
    /* A status line without a reason phrase. */
    const char noreason[] = "HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n";
    check_all_splits(S(noreason), 0, 0, 0, sizeof noreason - 1, 500, 0);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "<html>hello</html>\n\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded: line\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\x01\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = strlen(bad[i]);
        for (size_t step = 0; step <= len; step++) {
            outcome o = run(bad[i], len, step, 0, 0);
            if (o.rc != -1)
                fail_msg("case %zu step %zu: rc %d, expected malformed (-1): %s", i, step,
                         o.rc, bad[i]);
        }
    }
}

/* A head that never ends is refused once it passes the limit, and a head
 * at the limit's edge still parses. */
static void test_head_limit(void **state)
{
    size_t cap = SP__RESP_HEAD_MAX + 100;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\n");
    while (n < SP__RESP_HEAD_MAX)
        n += (size_t)sprintf(big + n, "X: y\r\n");
    sp__resp r;
    sp__resp_init(&r, 0);
    assert_int_equal(sp__resp_feed(&r, big, n), -1);
    n = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\n");
    while (n < SP__RESP_HEAD_MAX - 64)
        n += (size_t)sprintf(big + n, "X: y\r\n");
    n += (size_t)sprintf(big + n, "Content-Length: 0\r\n\r\n");
    sp__resp_init(&r, 0);
    assert_int_equal(sp__resp_feed(&r, big, n), (ssize_t)n);
    assert_true(r.done);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_keepalive_decisions),
        cmocka_unit_test(test_bodies_without_length),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_head_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
