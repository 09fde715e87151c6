/* Pipelined requests on one connection: each head and body ends exactly
 * where the next request starts, as a connection loop would see them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "spindle/http.h"

static void test_three_pipelined(void **state)
{
    const char in[] =
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
        "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\npq\r\n0\r\n\r\n"
        "GET /d HTTP/1.0\r\n\r\n";
    static const char *const targets[] = { "/a", "/b", "/c", "/d" };
    static const char *const bodies[] = { "", "xyz", "pq", "" };
    sp_http_header h[16];
    sp_http_request req;
    size_t pos = 0, len = sizeof in - 1;
    int i;

    (void)state;
    sp_http_request_init(&req, h, 16, NULL);
    for (i = 0; i < 4; i++) {
        sp_http_body b;
        char body[8];
        size_t bl = 0;
        ssize_t n = sp_http_parse_request(&req, in + pos, len - pos);

        if (n <= 0)
            fail_msg("request %d: expected a head, got %zd", i, n);
        if (req.target_len != strlen(targets[i]) ||
            memcmp(req.target, targets[i], req.target_len) != 0)
            fail_msg("request %d: expected target %s", i, targets[i]);
        pos += (size_t)n;
        sp_http_body_init(&b, &req, NULL);
        while (!sp_http_body_done(&b)) {
            const char *d;
            size_t dl;

            n = sp_http_body_parse(&b, in + pos, len - pos, &d, &dl);
            if (n <= 0)
                fail_msg("request %d: body parse gave %zd", i, n);
            memcpy(body + bl, d, dl);
            bl += dl;
            pos += (size_t)n;
        }
        if (bl != strlen(bodies[i]) || memcmp(body, bodies[i], bl) != 0)
            fail_msg("request %d: expected body \"%s\"", i, bodies[i]);
    }
    assert_int_equal(pos, len);
    assert_false(req.keep_alive); /* the last one is HTTP/1.0 */
}

/* A connection that reads the second request in pieces, in the same buffer,
 * after compacting it to the front. */
static void test_compaction_between_requests(void **state)
{
    char buf[128];
    const char first[] = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HT";
    const char rest[] = "TP/1.1\r\nHost: h\r\n\r\n";
    sp_http_header h[8];
    sp_http_request req;
    size_t len = sizeof first - 1;
    ssize_t n;

    (void)state;
    sp_http_request_init(&req, h, 8, NULL);
    memcpy(buf, first, len);
    n = sp_http_parse_request(&req, buf, len);
    assert_true(n > 0);
    memmove(buf, buf + n, len - (size_t)n);
    len -= (size_t)n;
    assert_int_equal(sp_http_parse_request(&req, buf, len), SP_HTTP_AGAIN);
    memcpy(buf + len, rest, sizeof rest - 1);
    len += sizeof rest - 1;
    n = sp_http_parse_request(&req, buf, len);
    assert_int_equal(n, (ssize_t)len);
    assert_memory_equal(req.target, "/2", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_pipelined),
        cmocka_unit_test(test_compaction_between_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
