/* HTTP dates: IMF-fixdate formatting, the once-a-second cache, and parsing
 * of the three forms of RFC 9110 §5.6.7. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "spindle/http.h"

static void expect_date(int64_t t, const char *want)
{
    char out[SP_HTTP_DATE_LEN + 1];

    assert_int_equal(sp_http_format_date(out, t), SP_HTTP_DATE_LEN);
    if (strcmp(out, want) != 0)
        fail_msg("t=%lld: expected \"%s\", got \"%s\"", (long long)t, want, out);
}

static void test_known_dates(void **state)
{
    (void)state;
    expect_date(0, "Thu, 01 Jan 1970 00:00:00 GMT");
    expect_date(784111777, "Sun, 06 Nov 1994 08:49:37 GMT");
    expect_date(951782400, "Tue, 29 Feb 2000 00:00:00 GMT");
    expect_date(-1, "Wed, 31 Dec 1969 23:59:59 GMT");
    expect_date(4107542400, "Mon, 01 Mar 2100 00:00:00 GMT");
    expect_date(INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT");
    expect_date(INT64_MIN, "Sat, 01 Jan 0000 00:00:00 GMT");
}

/* Agrees with the C library over a long range. */
static void test_against_gmtime(void **state)
{
    uint64_t x = 88172645463325252u;
    int i;

    (void)state;
    for (i = 0; i < 200000; i++) {
        char want[64], got[SP_HTTP_DATE_LEN + 1];
        struct tm tm;
        time_t t;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t = (time_t)(x % 32503680000u) - 2208988800; /* 1900 to 3000 */
        gmtime_r(&t, &tm);
        strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        sp_http_format_date(got, (int64_t)t);
        if (strcmp(want, got) != 0)
            fail_msg("t=%lld: expected \"%s\" (gmtime), got \"%s\"", (long long)t, want, got);
    }
}

static void test_cache_once_per_second(void **state)
{
    sp_http_date_cache a, b;
    const char *p, *q;
    int i;

    (void)state;
    sp_http_date_cache_init(&a);
    sp_http_date_cache_init(&b);
    p = sp_http_date_get(&a, 784111777);
    for (i = 0; i < 1000; i++) {
        q = sp_http_date_get(&a, 784111777);
        if (q != p)
            fail_msg("expected the same string within one second");
    }
    if (a.refreshes != 1)
        fail_msg("expected 1 format in one second, got %llu", (unsigned long long)a.refreshes);
    assert_string_equal(p, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_string_equal(sp_http_date_get(&a, 784111778), "Sun, 06 Nov 1994 08:49:38 GMT");
    assert_int_equal(a.refreshes, 2);
    /* caches are independent: one per thread or connection */
    assert_string_equal(sp_http_date_get(&b, 0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_string_equal(sp_http_date_get(&a, 784111778), "Sun, 06 Nov 1994 08:49:38 GMT");
    assert_int_equal(a.refreshes, 2);
}

static void expect_parse(const char *s, int64_t want)
{
    int64_t t = -12345;
    int rc = sp_http_parse_date(s, strlen(s), &t);

    if (rc != 0 || t != want)
        fail_msg("\"%s\": expected %lld, got rc %d t %lld", s, (long long)want, rc, (long long)t);
}

static void expect_invalid(const char *s)
{
    int64_t t;

    if (sp_http_parse_date(s, strlen(s), &t) != -EINVAL)
        fail_msg("\"%s\": expected -EINVAL", s);
}

static void test_parse_forms(void **state)
{
    (void)state;
    expect_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111777);
    expect_parse("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
    expect_parse("Sun Nov  6 08:49:37 1994", 784111777);
    expect_parse("Sun Nov 16 08:49:37 1994", 784111777 + 10 * 86400);
    expect_parse("Thursday, 01-Jan-70 00:00:00 GMT", 0);
    expect_parse("Saturday, 01-Jan-00 00:00:00 GMT", 946684800);
    expect_parse("Tue, 29 Feb 2000 00:00:00 GMT", 951782400);
    expect_invalid("");
    expect_invalid("Sun, 06 Nov 1994 08:49:37 UTC");
    expect_invalid("Sun, 06 Nov 1994 08:49:37 GMT ");
    expect_invalid("Sun, 06 Nov 1994 08:49:37");
    expect_invalid("Sun, 6 Nov 1994 08:49:37 GMT");
    expect_invalid("Sun, 31 Feb 1994 08:49:37 GMT");
    expect_invalid("Tue, 29 Feb 1900 00:00:00 GMT");
    expect_invalid("Sun, 06 Nov 1994 24:00:00 GMT");
    expect_invalid("Sun, 06 Foo 1994 08:49:37 GMT");
    expect_invalid("Sun Nov 6 08:49:37 1994");
    expect_invalid("Sunday, 06-Nov-1994 08:49:37 GMT");
    expect_invalid("1994-11-06T08:49:37Z");
}

static void test_round_trip(void **state)
{
    int64_t t;

    (void)state;
    for (t = -86400 * 365; t < 4000000000; t += 7777777) {
        char s[SP_HTTP_DATE_LEN + 1];
        int64_t back;

        sp_http_format_date(s, t);
        if (sp_http_parse_date(s, SP_HTTP_DATE_LEN, &back) != 0 || back != t)
            fail_msg("\"%s\" did not parse back to %lld", s, (long long)t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_dates),
        cmocka_unit_test(test_against_gmtime),
        cmocka_unit_test(test_cache_once_per_second),
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
