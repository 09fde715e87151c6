/* The response writer, byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "spindle/http.h"

#define DATE "Sun, 06 Nov 1994 08:49:37 GMT"

static void expect_bytes(const char *what, const char *got, ssize_t n,
                         const char *want)
{
    if (n < 0)
        fail_msg("%s: expected %zu bytes, got error %zd", what, strlen(want), n);
    if ((size_t)n != strlen(want) || memcmp(got, want, (size_t)n) != 0)
        fail_msg("%s: expected\n[%s]\ngot\n[%.*s]", what, want, (int)n, got);
}

static sp_http_request parsed(const char *msg, sp_http_header *h)
{
    sp_http_request r;

    sp_http_request_init(&r, h, 8, NULL);
    if (sp_http_parse_request(&r, msg, strlen(msg)) <= 0)
        fail_msg("test request did not parse: %s", msg);
    return r;
}

static void test_error_pages(void **state)
{
    char buf[256];

    (void)state;
    expect_bytes("400", buf, sp_http_write_error(buf, sizeof buf, 400, DATE),
                 "HTTP/1.1 400 Bad Request\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n"
                 "Connection: close\r\n\r\n400 Bad Request\n");
    expect_bytes("431", buf, sp_http_write_error(buf, sizeof buf, 431, DATE),
                 "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: spindle\r\n"
                 "Date: " DATE "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: 36\r\nConnection: close\r\n\r\n"
                 "431 Request Header Fields Too Large\n");
    /* every parser status fits the 256 bytes the header promises */
    {
        static const int st[] = { 400, 413, 414, 431, 501, 505 };
        size_t i;

        for (i = 0; i < sizeof st / sizeof st[0]; i++)
            if (sp_http_write_error(buf, sizeof buf, st[i], DATE) <= 0)
                fail_msg("expected the %d page to fit 256 bytes", st[i]);
    }
    assert_int_equal(sp_http_write_error(buf, 50, 400, DATE), -ENOBUFS);
}

static void test_hello(void **state)
{
    sp_http_header h[8];
    sp_http_request r = parsed("GET / HTTP/1.1\r\nHost: a\r\n\r\n", h);
    char buf[256];

    (void)state;
    expect_bytes("hello 1.1", buf, sp_http_write_status(buf, sizeof buf, &r, 200, NULL, true, DATE),
                 "HTTP/1.1 200 OK\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\n"
                 "Hello, World!\n");
    /* the server wants to close */
    expect_bytes("hello closing", buf, sp_http_write_status(buf, sizeof buf, &r, 200, NULL, false, DATE),
                 "HTTP/1.1 200 OK\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n"
                 "Connection: close\r\n\r\nHello, World!\n");
}

static void test_http10_keep_alive_and_head(void **state)
{
    sp_http_header h[8];
    sp_http_request r = parsed("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", h);
    sp_http_request c = parsed("GET / HTTP/1.0\r\n\r\n", h + 4);
    char buf[256];

    (void)state;
    expect_bytes("HEAD 1.0 keep-alive", buf,
                 sp_http_write_status(buf, sizeof buf, &r, 200, NULL, true, DATE),
                 "HTTP/1.1 200 OK\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n"
                 "Connection: keep-alive\r\n\r\n");
    /* the request's rule wins over the server's wish */
    expect_bytes("1.0 without keep-alive", buf,
                 sp_http_write_status(buf, sizeof buf, &c, 404, NULL, true, DATE),
                 "HTTP/1.1 404 Not Found\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n"
                 "Connection: close\r\n\r\n404 Not Found\n");
}

static void test_405_allow(void **state)
{
    sp_http_header h[8];
    sp_http_request r = parsed("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", h);
    sp_http_action act;
    char buf[256];

    (void)state;
    sp_http_route(&r, &act);
    expect_bytes("405", buf, sp_http_write_reply(buf, sizeof buf, &r, &act, true, DATE),
                 "HTTP/1.1 405 Method Not Allowed\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nAllow: GET, HEAD\r\n"
                 "Content-Length: 23\r\n\r\n405 Method Not Allowed\n");
}

static void test_writer_pieces(void **state)
{
    char buf[512];
    sp_http_writer w;

    (void)state;
    sp_http_writer_init(&w, buf, sizeof buf);
    sp_http_put_status(&w, 200, DATE);
    sp_http_put_header(&w, "Content-Type", "text/html", 9);
    sp_http_put_chunked(&w);
    sp_http_put_connection(&w, 1, true);
    sp_http_put_end(&w);
    sp_http_put_chunk_begin(&w, 255);
    sp_http_put(&w, "x", 1);
    sp_http_put_chunk_end(&w);
    sp_http_put_chunk_begin(&w, 1);
    sp_http_put(&w, "y", 1);
    sp_http_put_chunk_end(&w);
    sp_http_put_last_chunk(&w);
    expect_bytes("chunked", buf, sp_http_writer_finish(&w),
                 "HTTP/1.1 200 OK\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Content-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "ff\r\nx\r\n1\r\ny\r\n0\r\n\r\n");

    sp_http_writer_init(&w, buf, sizeof buf);
    sp_http_put_status(&w, 42, DATE); /* not a status: 500 */
    sp_http_put_content_length(&w, 18446744073709551615u);
    sp_http_put_connection(&w, 1, false);
    expect_bytes("odd status", buf, sp_http_writer_finish(&w),
                 "HTTP/1.1 500 Internal Server Error\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Content-Length: 18446744073709551615\r\nConnection: close\r\n");
    assert_string_equal(sp_http_reason(599), "Unknown");
}

/* 204 and 304 pages carry neither a body nor a length. */
static void test_bodyless_statuses(void **state)
{
    sp_http_header h[8];
    sp_http_request r = parsed("GET / HTTP/1.1\r\nHost: a\r\n\r\n", h);
    char buf[256];

    (void)state;
    expect_bytes("204", buf, sp_http_write_status(buf, sizeof buf, &r, 204, NULL, true, DATE),
                 "HTTP/1.1 204 No Content\r\nServer: spindle\r\nDate: " DATE "\r\n\r\n");
    expect_bytes("304", buf, sp_http_write_status(buf, sizeof buf, &r, 304, NULL, false, DATE),
                 "HTTP/1.1 304 Not Modified\r\nServer: spindle\r\nDate: " DATE "\r\n"
                 "Connection: close\r\n\r\n");
}

static void test_writer_overflow(void **state)
{
    char buf[8];
    sp_http_writer w;

    (void)state;
    sp_http_writer_init(&w, buf, sizeof buf);
    sp_http_put(&w, "12345678", 8);
    assert_int_equal(sp_http_writer_finish(&w), 8);
    sp_http_put(&w, "9", 1);
    if (sp_http_writer_finish(&w) != -ENOBUFS)
        fail_msg("expected -ENOBUFS once an append did not fit");
    assert_int_equal(w.len, 8); /* nothing partial was written */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_pages),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_http10_keep_alive_and_head),
        cmocka_unit_test(test_405_allow),
        cmocka_unit_test(test_writer_pieces),
        cmocka_unit_test(test_writer_overflow),
        cmocka_unit_test(test_bodyless_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
