/* Every case of the corpus, parsed whole: the verdict and the parsed fields
 * are those the rule in the case names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/http_internal.h"
#include "http_corpus.h"

static void test_corpus_whole(void **state)
{
    struct guard g;
    size_t i, failures = 0;

    (void)state;
    corpus_init();
    guard_init(&g, 1 << 16);
    for (i = 0; i < corpus_count; i++) {
        const struct corpus_case *c = &corpus[i];
        static struct msg_result r;
        char why[1024];
        char *buf = guard_place(&g, c->raw, c->len);

        msg_parse(buf, c->len, NULL, 0, c->limits, &r);
        corpus_check(c, &r, why, sizeof why);
        if (why[0]) {
            print_error("case %s (%s): %s\n", c->name, c->rule, why);
            failures++;
        }
    }
    guard_free(&g);
    if (failures)
        fail_msg("%zu of %zu corpus cases did not give the expected result",
                 failures, corpus_count);
}

/* The byte classes must be exactly the RFC 9110 grammars. */
static void test_byte_classes(void **state)
{
    static const char tspecial[] = "!#$%&'*+-.^_`|~";
    unsigned c;

    (void)state;
    for (c = 0; c < 256; c++) {
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                     (c >= 'A' && c <= 'Z');
        bool tchar = alnum || (c != 0 && strchr(tspecial, (int)c));
        bool target = c >= 0x21 && c <= 0x7e && c != '#';
        bool value = c == '\t' || (c >= 0x20 && c != 0x7f);
        unsigned want = (tchar ? SP__HTTP_TCHAR : 0u) | (target ? SP__HTTP_TARGET : 0u) |
                        (value ? SP__HTTP_VALUE : 0u);

        if (sp__http_class[c] != want)
            fail_msg("byte 0x%02x: class %u, expected %u (tchar %d target %d value %d)",
                     c, sp__http_class[c], want, tchar, target, value);
    }
}

/* An error is sticky until reset, whatever is passed next. */
static void test_error_is_sticky(void **state)
{
    sp_http_header h[8];
    sp_http_request req;
    const char bad[] = "GET / HTTP/1.1\nHost: a\r\n\r\n";
    const char good[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

    (void)state;
    sp_http_request_init(&req, h, 8, NULL);
    assert_int_equal(sp_http_parse_request(&req, bad, sizeof bad - 1), -400);
    assert_int_equal(req.status, 400);
    if (sp_http_parse_request(&req, good, sizeof good - 1) != -400)
        fail_msg("expected the error to stay until sp_http_request_reset()");
    sp_http_request_reset(&req);
    assert_int_equal(sp_http_parse_request(&req, good, sizeof good - 1),
                     (ssize_t)(sizeof good - 1));
}

/* A connection that moves its partial head (compaction) gets the same
 * request, with pointers into the new place. */
static void test_buffer_moves(void **state)
{
    const char msg[] = "GET /moved HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
    char a[64], b[128];
    sp_http_header h[8];
    sp_http_request req;
    ssize_t n;

    (void)state;
    sp_http_request_init(&req, h, 8, NULL);
    memcpy(a, msg, 20);
    assert_int_equal(sp_http_parse_request(&req, a, 20), SP_HTTP_AGAIN);
    memcpy(b + 7, msg, sizeof msg - 1);
    memset(a, 'Z', sizeof a); /* the old copy is gone */
    n = sp_http_parse_request(&req, b + 7, sizeof msg - 1);
    if (n != (ssize_t)(sizeof msg - 1))
        fail_msg("expected the head (%zu bytes) after the move, got %zd",
                 sizeof msg - 1, n);
    assert_ptr_equal(req.target, b + 7 + 4);
    assert_int_equal(req.num_headers, 2);
    assert_memory_equal(req.headers[1].value, "y", 1);
}

/* A headers array smaller than the limit is the limit. */
static void test_small_header_array(void **state)
{
    const char msg[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n";
    sp_http_header h[2];
    sp_http_request req;

    (void)state;
    sp_http_request_init(&req, h, 2, NULL);
    if (sp_http_parse_request(&req, msg, sizeof msg - 1) != -431)
        fail_msg("expected 431 once the 2-entry array is full");
}

/* After a head, the next call starts a new request, even at the same
 * address (a connection that moved the next request to the front). */
static void test_next_request_same_address(void **state)
{
    char buf[64];
    const char one[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
    const char two[] = "GET /2 HTTP/1.0\r\n\r\n";
    sp_http_header h[8];
    sp_http_request req;

    (void)state;
    sp_http_request_init(&req, h, 8, NULL);
    memcpy(buf, one, sizeof one - 1);
    assert_int_equal(sp_http_parse_request(&req, buf, sizeof one - 1), (ssize_t)(sizeof one - 1));
    memcpy(buf, two, sizeof two - 1);
    assert_int_equal(sp_http_parse_request(&req, buf, sizeof two - 1), (ssize_t)(sizeof two - 1));
    assert_memory_equal(req.target, "/2", 2);
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.num_headers, 0);
}

static void test_find_header_and_method_names(void **state)
{
    const char msg[] = "PATCH / HTTP/1.1\r\nHost: a\r\nX-Thing: 1\r\nx-thing: 2\r\n\r\n";
    sp_http_header h[8];
    sp_http_request req;
    const sp_http_header *f;

    (void)state;
    sp_http_request_init(&req, h, 8, NULL);
    assert_true(sp_http_parse_request(&req, msg, sizeof msg - 1) > 0);
    f = sp_http_find_header(&req, "x-thing");
    assert_non_null(f);
    assert_memory_equal(f->value, "1", 1);
    assert_null(sp_http_find_header(&req, "x-thin"));
    assert_string_equal(sp_http_method_name(req.method), "PATCH");
    assert_string_equal(sp_http_method_name(SP_HTTP_UNKNOWN), "");
}

/* An empty read, even with no buffer at all, asks for more. */
static void test_empty_input(void **state)
{
    sp_http_header h[4];
    sp_http_request req;
    sp_http_body b;
    sp_http_cgi_reply c;
    const char *d = "x";
    size_t dl = 1;

    (void)state;
    sp_http_request_init(&req, h, 4, NULL);
    assert_int_equal(sp_http_parse_request(&req, NULL, 0), SP_HTTP_AGAIN);
    assert_int_equal(sp_http_parse_request(&req, "GET", 3), SP_HTTP_AGAIN);
    assert_int_equal(sp_http_parse_request(&req, "GET", 3), SP_HTTP_AGAIN);
    req.body_kind = SP_HTTP_BODY_CHUNKED;
    sp_http_body_init(&b, &req, NULL);
    assert_int_equal(sp_http_body_parse(&b, NULL, 0, &d, &dl), 0);
    assert_int_equal(dl, 0);
    sp_http_cgi_reply_init(&c);
    assert_int_equal(sp_http_cgi_parse(&c, NULL, 0), SP_HTTP_AGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_whole),
        cmocka_unit_test(test_byte_classes),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_buffer_moves),
        cmocka_unit_test(test_small_header_array),
        cmocka_unit_test(test_next_request_same_address),
        cmocka_unit_test(test_find_header_and_method_names),
        cmocka_unit_test(test_empty_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
