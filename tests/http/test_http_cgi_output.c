/* A CGI script's output (RFC 3875 §6) becomes an HTTP response head. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "spindle/http.h"

#define DATE "Sun, 06 Nov 1994 08:49:37 GMT"
#define ST(code, reason) "HTTP/1.1 " code " " reason "\r\nServer: spindle\r\nDate: " DATE "\r\n"

#define WHOLE (-1000) /* the head is the whole output */

struct out_case {
    const char *out;
    ssize_t result;  /* head length, WHOLE, SP_HTTP_AGAIN or -502 */
    int status;
};

static const struct out_case cases[] = {
    { "Content-Type: text/html\n\n<p>hi</p>", 25, 200 },
    { "Content-Type: text/html\r\n\r\nbody", 27, 200 },
    { "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n", WHOLE, 404 },
    { "Status: 201\nContent-Type: text/plain\n\n", WHOLE, 201 },
    { "Location: http://example.com/\n\n", WHOLE, 302 },
    { "Location: /local/path\n\n", WHOLE, 302 },
    { "Status: 301 Moved\nLocation: http://e/\n\n", WHOLE, 301 },
    { "content-type: a/b\nX-Extra: 1\nContent-Length: 4\n\nbody", 48, 200 },
    { "\n", -502, 0 },                                    /* no fields */
    { "X-Only: 1\n\n", -502, 0 },                          /* neither type nor location */
    { "Content-Type: a/b\nNoColon\n\n", -502, 0 },
    { "Content-Type: a/b\n folded\n\n", -502, 0 },
    { "Content-Type : a/b\n\n", -502, 0 },
    { "Content-Type: a\rb\n\n", -502, 0 },
    { "Status: abc\nContent-Type: a/b\n\n", -502, 0 },
    { "Status: 99\nContent-Type: a/b\n\n", -502, 0 },
    { "Status: 100 Continue\nContent-Type: a/b\n\n", -502, 0 },
    { "Status: 2000\nContent-Type: a/b\n\n", -502, 0 },
    { "Status: 200\nStatus: 200\nContent-Type: a/b\n\n", -502, 0 },
    { "Content-Type: a/b\nContent-Length: x\n\n", -502, 0 },
    { "Content-Type: a/b\nContent-Length: 1\nContent-Length: 1\n\n", -502, 0 },
    { "Content-Type: a/b\n", SP_HTTP_AGAIN, 0 },
    { "", SP_HTTP_AGAIN, 0 },
};

static ssize_t parse_split(const char *out, size_t len, size_t cut, sp_http_cgi_reply *c)
{
    ssize_t n;

    sp_http_cgi_reply_init(c);
    if (cut) {
        n = sp_http_cgi_parse(c, out, cut);
        if (n != SP_HTTP_AGAIN)
            return n;
    }
    return sp_http_cgi_parse(c, out, len);
}

static void test_output_cases(void **state)
{
    size_t i, k;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct out_case *t = &cases[i];
        size_t len = strlen(t->out);
        ssize_t want = t->result == WHOLE ? (ssize_t)len : t->result;

        /* whole, and at every split point: the same verdict */
        for (k = 0; k < len || k == 0; k++) {
            sp_http_cgi_reply c;
            ssize_t n = parse_split(t->out, len, k, &c);

            if (n != want || (n > 0 && c.status != t->status))
                fail_msg("output \"%s\" (split at %zu): expected %zd status %d, got %zd status %d",
                         t->out, k, want, t->status, n, c.status);
        }
    }
}

static void test_head_too_large(void **state)
{
    static char out[SP_HTTP_CGI_HEAD_MAX + 64];
    sp_http_cgi_reply c;
    size_t n;

    (void)state;
    n = (size_t)sprintf(out, "Content-Type: a/b\nX: ");
    memset(out + n, 'v', SP_HTTP_CGI_HEAD_MAX);
    n += SP_HTTP_CGI_HEAD_MAX;
    sp_http_cgi_reply_init(&c);
    if (sp_http_cgi_parse(&c, out, n) != -502)
        fail_msg("expected -502 once the CGI head passed %u bytes", SP_HTTP_CGI_HEAD_MAX);
}

static void expect_head(const char *out, const char *request, const char *want,
                        sp_http_framing framing)
{
    sp_http_header h[8];
    sp_http_request req;
    sp_http_cgi_reply c;
    sp_http_framing got;
    char buf[512];
    ssize_t n;

    sp_http_request_init(&req, h, 8, NULL);
    if (sp_http_parse_request(&req, request, strlen(request)) <= 0)
        fail_msg("request did not parse: %s", request);
    sp_http_cgi_reply_init(&c);
    if (sp_http_cgi_parse(&c, out, strlen(out)) <= 0)
        fail_msg("output did not parse: %s", out);
    n = sp_http_cgi_write_head(buf, sizeof buf, &c, out, &req, true, DATE, &got);
    if (n != (ssize_t)strlen(want) || memcmp(buf, want, strlen(want)) != 0)
        fail_msg("for \"%s\": expected\n[%s]\ngot\n[%.*s]", out, want, (int)n, buf);
    if (got != framing)
        fail_msg("for \"%s\": expected framing %d, got %d", out, framing, got);
}

static void test_heads(void **state)
{
    const char *get11 = "GET /cgi-bin/x HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *get10 = "GET /cgi-bin/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    const char *head11 = "HEAD /cgi-bin/x HTTP/1.1\r\nHost: h\r\n\r\n";

    (void)state;
    /* no length: chunked on 1.1; the script's Date, Server, Connection dropped */
    expect_head("Content-Type: text/html\nDate: x\nServer: y\nConnection: close\n"
                "Set-Cookie: a=b\n\nhello", get11,
                ST("200", "OK") "Content-Type: text/html\r\nSet-Cookie: a=b\r\n"
                "Transfer-Encoding: chunked\r\n\r\n", SP_HTTP_FRAME_CHUNKED);
    /* the script's length is used */
    expect_head("Status: 404 Nope\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nno\n",
                get11,
                ST("404", "Not Found") "Content-Type: text/plain\r\nContent-Length: 3\r\n\r\n",
                SP_HTTP_FRAME_LENGTH);
    /* 1.0 without a length: the close ends the body */
    expect_head("Content-Type: text/plain\n\nx", get10,
                ST("200", "OK") "Content-Type: text/plain\r\nConnection: close\r\n\r\n",
                SP_HTTP_FRAME_CLOSE);
    expect_head("Content-Type: text/plain\nContent-Length: 1\n\nx", get10,
                ST("200", "OK") "Content-Type: text/plain\r\nContent-Length: 1\r\n"
                "Connection: keep-alive\r\n\r\n", SP_HTTP_FRAME_LENGTH);
    /* redirect */
    expect_head("Location: http://e/\n\n", get11,
                ST("302", "Found") "Location: http://e/\r\nTransfer-Encoding: chunked\r\n\r\n",
                SP_HTTP_FRAME_CHUNKED);
    /* 304: no body framing at all */
    expect_head("Status: 304\nContent-Type: a/b\n\n", get11,
                ST("304", "Not Modified") "Content-Type: a/b\r\n\r\n", SP_HTTP_FRAME_NONE);
    /* HEAD: the GET head, no body */
    expect_head("Content-Type: a/b\n\nbody", head11,
                ST("200", "OK") "Content-Type: a/b\r\nTransfer-Encoding: chunked\r\n\r\n",
                SP_HTTP_FRAME_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_cases),
        cmocka_unit_test(test_head_too_large),
        cmocka_unit_test(test_heads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
