/* The static response head: 200, 304 from If-Modified-Since, single ranges
 * (206, 416) and HEAD, byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "spindle/http.h"

#define DATE "Mon, 07 Nov 1994 00:00:00 GMT"
#define MTIME 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */
#define LM "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
#define HEAD200 "HTTP/1.1 200 OK\r\nServer: spindle\r\nDate: " DATE "\r\n"

struct outcome {
    char head[512];
    ssize_t len;
    sp_http_file_reply fr;
};

static void serve(const char *method, const char *extra, struct outcome *o)
{
    char msg[512];
    sp_http_header h[8];
    sp_http_request req;
    struct stat st;
    int n = snprintf(msg, sizeof msg, "%s /static/a.html HTTP/1.1\r\nHost: h\r\n%s\r\n",
                     method, extra);

    sp_http_request_init(&req, h, 8, NULL);
    if (sp_http_parse_request(&req, msg, (size_t)n) != n)
        fail_msg("request with \"%s\" did not parse", extra);
    memset(&st, 0, sizeof st);
    st.st_mode = S_IFREG | 0644;
    st.st_size = 100;
    st.st_mtime = MTIME;
    o->len = sp_http_static_head(o->head, sizeof o->head, &req, "a.html", 6, &st, true,
                                 DATE, &o->fr);
}

static void expect(const char *method, const char *extra, int status, unsigned long long off,
                   unsigned long long len, const char *head)
{
    struct outcome o;

    serve(method, extra, &o);
    if (o.fr.status != status || o.fr.offset != off || o.fr.length != len)
        fail_msg("%s with \"%s\": expected status %d offset %llu length %llu, got %d %llu %llu",
                 method, extra, status, off, len, o.fr.status,
                 (unsigned long long)o.fr.offset, (unsigned long long)o.fr.length);
    if (head && (o.len != (ssize_t)strlen(head) || memcmp(o.head, head, strlen(head)) != 0))
        fail_msg("%s with \"%s\": expected head\n[%s]\ngot\n[%.*s]", method, extra, head,
                 (int)o.len, o.head);
}

static void test_200(void **state)
{
    (void)state;
    expect("GET", "", 200, 0, 100,
           HEAD200 "Content-Type: text/html; charset=utf-8\r\nContent-Length: 100\r\n"
           "Accept-Ranges: bytes\r\n" LM "\r\n");
    /* HEAD: the same head, no body to send */
    expect("HEAD", "", 200, 0, 0,
           HEAD200 "Content-Type: text/html; charset=utf-8\r\nContent-Length: 100\r\n"
           "Accept-Ranges: bytes\r\n" LM "\r\n");
}

static void test_304(void **state)
{
    const char *h304 = "HTTP/1.1 304 Not Modified\r\nServer: spindle\r\nDate: " DATE "\r\n"
                       LM "\r\n";

    (void)state;
    expect("GET", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", 304, 0, 0, h304);
    expect("GET", "If-Modified-Since: Mon, 07 Nov 1994 08:49:37 GMT\r\n", 304, 0, 0, h304);
    expect("HEAD", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", 304, 0, 0, h304);
    expect("GET", "If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT\r\n", 304, 0, 0, h304);
    expect("GET", "If-Modified-Since: Sun Nov  6 08:49:37 1994\r\n", 304, 0, 0, h304);
    /* one second older than the file: modified */
    expect("GET", "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n", 200, 0, 100, NULL);
    /* not a date: ignored (RFC 9110 §13.1.3) */
    expect("GET", "If-Modified-Since: yesterday\r\n", 200, 0, 100, NULL);
    /* If-None-Match present: If-Modified-Since is ignored */
    expect("GET", "If-None-Match: \"x\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
           200, 0, 100, NULL);
    /* 304 wins over Range (RFC 9110 §13.2.2 order) */
    expect("GET", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nRange: bytes=0-1\r\n",
           304, 0, 0, NULL);
}

static void test_ranges(void **state)
{
    (void)state;
    expect("GET", "Range: bytes=0-4\r\n", 206, 0, 5,
           "HTTP/1.1 206 Partial Content\r\nServer: spindle\r\nDate: " DATE "\r\n"
           "Content-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n"
           "Content-Range: bytes 0-4/100\r\nAccept-Ranges: bytes\r\n" LM "\r\n");
    expect("GET", "Range: bytes=-10\r\n", 206, 90, 10, NULL);
    expect("GET", "Range: bytes=-1000\r\n", 206, 0, 100, NULL);
    expect("GET", "Range: bytes=95-\r\n", 206, 95, 5, NULL);
    expect("GET", "Range: bytes=50-5000\r\n", 206, 50, 50, NULL);
    expect("GET", "Range: BYTES=1-1\r\n", 206, 1, 1, NULL);
    expect("GET", "Range: bytes=100-\r\n", 416, 0, 0,
           "HTTP/1.1 416 Range Not Satisfiable\r\nServer: spindle\r\nDate: " DATE "\r\n"
           "Content-Range: bytes */100\r\nContent-Length: 0\r\n" LM "\r\n");
    expect("GET", "Range: bytes=-0\r\n", 416, 0, 0, NULL);
    /* ignored: whole file */
    expect("GET", "Range: bytes=5-2\r\n", 200, 0, 100, NULL);
    expect("GET", "Range: bytes=0-1,5-6\r\n", 200, 0, 100, NULL);
    expect("GET", "Range: items=0-1\r\n", 200, 0, 100, NULL);
    expect("GET", "Range: bytes=a-b\r\n", 200, 0, 100, NULL);
    expect("GET", "Range: bytes=99999999999999999999-\r\n", 200, 0, 100, NULL);
    expect("GET", "Range: bytes=0-1\r\nIf-Range: \"x\"\r\n", 200, 0, 100, NULL);
    expect("HEAD", "Range: bytes=0-1\r\n", 200, 0, 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_200),
        cmocka_unit_test(test_304),
        cmocka_unit_test(test_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
