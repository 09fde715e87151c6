/* The body decoder: spans in place, one span per call, limits and errors
 * as the bytes arrive. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "spindle/http.h"

static sp_http_request chunked_req(void)
{
    sp_http_request r;

    memset(&r, 0, sizeof r);
    r.body_kind = SP_HTTP_BODY_CHUNKED;
    return r;
}

/* Decodes all of buf; returns the error or bytes consumed, body in out. */
static ssize_t decode_all(sp_http_body *b, const char *buf, size_t len,
                          char *out, size_t *out_len)
{
    size_t pos = 0;

    *out_len = 0;
    while (!sp_http_body_done(b) && pos < len) {
        const char *d;
        size_t dl;
        ssize_t n = sp_http_body_parse(b, buf + pos, len - pos, &d, &dl);

        if (n < 0)
            return n;
        if (dl && (d < buf + pos || d + dl > buf + len))
            fail_msg("expected the data span inside the input buffer");
        memcpy(out + *out_len, d, dl);
        *out_len += dl;
        pos += (size_t)n;
    }
    return (ssize_t)pos;
}

static void test_spans_are_in_place(void **state)
{
    const char in[] = "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\nNEXT";
    sp_http_request r = chunked_req();
    sp_http_body b;
    const char *d;
    size_t dl;
    ssize_t n;

    (void)state;
    sp_http_body_init(&b, &r, NULL);
    n = sp_http_body_parse(&b, in, sizeof in - 1, &d, &dl);
    /* the first call stops after the first span so the caller can use it */
    assert_int_equal(n, 8);
    assert_ptr_equal(d, in + 3);
    assert_int_equal(dl, 5);
    n = sp_http_body_parse(&b, in + 8, sizeof in - 1 - 8, &d, &dl);
    assert_ptr_equal(d, in + 17);
    assert_int_equal(dl, 6);
    assert_int_equal(n, 23 - 8);
    n = sp_http_body_parse(&b, in + 23, sizeof in - 1 - 23, &d, &dl);
    assert_int_equal(dl, 0);
    assert_true(sp_http_body_done(&b));
    if (in[23 + n] != 'N')
        fail_msg("expected the body to end right before NEXT, it ended at %zd", 23 + n);
    assert_int_equal(b.total, 11);
    /* done: nothing more is consumed */
    assert_int_equal(sp_http_body_parse(&b, "GET", 3, &d, &dl), 0);
}

static void test_length_body(void **state)
{
    sp_http_request r;
    sp_http_body b;
    const char *d;
    size_t dl;

    (void)state;
    memset(&r, 0, sizeof r);
    r.body_kind = SP_HTTP_BODY_LENGTH;
    r.content_length = 5;
    sp_http_body_init(&b, &r, NULL);
    assert_int_equal(sp_http_body_parse(&b, "hel", 3, &d, &dl), 3);
    assert_int_equal(dl, 3);
    assert_false(sp_http_body_done(&b));
    assert_int_equal(sp_http_body_parse(&b, "loGET", 5, &d, &dl), 2);
    assert_int_equal(dl, 2);
    assert_true(sp_http_body_done(&b));
    r.content_length = 0;
    sp_http_body_init(&b, &r, NULL);
    assert_true(sp_http_body_done(&b));
    r.body_kind = SP_HTTP_BODY_NONE;
    sp_http_body_init(&b, &r, NULL);
    assert_true(sp_http_body_done(&b));
}

/* 413 is known from the size line, before any of the data arrives. */
static void test_limit_before_data(void **state)
{
    const sp_http_limits lim = { 8192, 8192, 100, 10 };
    sp_http_request r = chunked_req();
    sp_http_body b;
    const char *d;
    size_t dl;

    (void)state;
    sp_http_body_init(&b, &r, &lim);
    assert_int_equal(sp_http_body_parse(&b, "b", 1, &d, &dl), 1);
    if (sp_http_body_parse(&b, "\r", 1, &d, &dl) != -413)
        fail_msg("expected 413 as soon as the 11-byte chunk size ended");
    /* sticky */
    assert_int_equal(sp_http_body_parse(&b, "0\r\n\r\n", 5, &d, &dl), -413);
}

static void test_overflow_checked_before_shift(void **state)
{
    const sp_http_limits lim = { 8192, 8192, 100, UINT64_MAX };
    sp_http_request r = chunked_req();
    sp_http_body b;
    char out[64];
    size_t ol;

    (void)state;
    sp_http_body_init(&b, &r, &lim);
    /* 16 hex digits fit 64 bits */
    if (decode_all(&b, "ffffffffffffffff\r\n", 18, out, &ol) != 18)
        fail_msg("expected 16 f's to be a valid (huge) chunk size");
    sp_http_body_init(&b, &r, &lim);
    if (decode_all(&b, "1ffffffffffffffff\r\n", 19, out, &ol) != -400)
        fail_msg("expected a 17-digit size to be refused as overflow (400)");
}

/* Extension bytes are bounded over a body, not just per line. */
static void test_extension_total(void **state)
{
    static char in[40000];
    sp_http_request r = chunked_req();
    sp_http_body b;
    static char out[40000];
    size_t ol, n = 0;
    int i;

    (void)state;
    for (i = 0; i < 200; i++) /* 200 x 102 extension bytes */
        n += (size_t)sprintf(in + n, "1;%0100d\r\nx\r\n", 0);
    sp_http_body_init(&b, &r, NULL);
    if (decode_all(&b, in, n, out, &ol) != -413)
        fail_msg("expected 413 once chunk extensions passed 16 KiB in one body");
}

static void test_trailer_limit(void **state)
{
    static char in[20000];
    sp_http_request r = chunked_req();
    sp_http_body b;
    static char out[100];
    size_t ol, n;

    (void)state;
    n = (size_t)sprintf(in, "0\r\nX: ");
    memset(in + n, 'a', 9000);
    n += 9000;
    n += (size_t)sprintf(in + n, "\r\n\r\n");
    sp_http_body_init(&b, &r, NULL);
    if (decode_all(&b, in, n, out, &ol) != -431)
        fail_msg("expected 431 for a trailer section over max_header_bytes");
}

/* A one-byte-at-a-time feed gives the same bytes. */
static void test_byte_by_byte(void **state)
{
    const char in[] = "3;a=\"q\"\r\nabc\r\n1\r\nd\r\n0\r\nT: v\r\n\r\n";
    sp_http_request r = chunked_req();
    sp_http_body b;
    char out[16];
    size_t ol = 0, i;

    (void)state;
    sp_http_body_init(&b, &r, NULL);
    for (i = 0; i < sizeof in - 1; i++) {
        const char *d;
        size_t dl;
        ssize_t n = sp_http_body_parse(&b, in + i, 1, &d, &dl);

        if (n != 1)
            fail_msg("expected each byte consumed, byte %zu gave %zd", i, n);
        memcpy(out + ol, d, dl);
        ol += dl;
    }
    assert_true(sp_http_body_done(&b));
    assert_int_equal(ol, 4);
    assert_memory_equal(out, "abcd", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spans_are_in_place),
        cmocka_unit_test(test_length_body),
        cmocka_unit_test(test_limit_before_data),
        cmocka_unit_test(test_overflow_checked_before_shift),
        cmocka_unit_test(test_extension_total),
        cmocka_unit_test(test_trailer_limit),
        cmocka_unit_test(test_byte_by_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
