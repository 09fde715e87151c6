/* The target URL (loopback only, parsed without any lookup) and the
 * duration syntax of the load and sweep command lines. */
#include "sp_test.h"

#include <arpa/inet.h>
#include <spindle/load.h>

static void test_loopback_urls(void **state)
{
    sp_load_target t;
    char err[256];
    assert_int_equal(sp_load_target_parse("http://127.0.0.1:8080/", &t, err, sizeof err), 0);
    assert_int_equal(t.family, AF_INET);
    assert_int_equal(t.port, 8080);
    assert_string_equal(t.host, "127.0.0.1:8080");
    assert_string_equal(t.path, "/");
    assert_int_equal(sp_load_target_parse("http://127.5.6.7", &t, err, sizeof err), 0);
    assert_int_equal(t.port, 80);
    assert_string_equal(t.path, "/");
    assert_int_equal(sp_load_target_parse("http://localhost:9/sleep?ms=10#frag", &t, err,
                                          sizeof err), 0);
    assert_string_equal(t.path, "/sleep?ms=10");
    assert_string_equal(t.host, "localhost:9");
    assert_int_equal(t.family, AF_INET);
    assert_int_equal(sp_load_target_parse("http://[::1]:81/a/b", &t, err, sizeof err), 0);
    assert_int_equal(t.family, AF_INET6);
    assert_int_equal(t.port, 81);
    assert_string_equal(t.host, "[::1]:81");
    assert_string_equal(t.path, "/a/b");
    assert_int_equal(sp_load_target_parse("http://127.0.0.1:1?x=1", &t, err, sizeof err), 0);
    assert_string_equal(t.path, "/?x=1");
}

static void test_refused_urls(void **state)
{
    static const char *const bad[] = {
        "http://10.0.0.1/",        "http://8.8.8.8:80/",  "http://example.com/",
        "http://[::2]/",           "http://[2001:db8::1]/", "https://127.0.0.1/",
        "ftp://127.0.0.1/",        "127.0.0.1:80",        "http://127.0.0.1:0/",
        "http://127.0.0.1:65536/", "http://127.0.0.1:8x/", "http:///",
        "http://user@127.0.0.1/",  "http://[::1/",        "http://127.0.0.1/a b",
        "http://128.0.0.1/",       "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sp_load_target t;
        char err[256] = "";
        if (sp_load_target_parse(bad[i], &t, err, sizeof err) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        if (!err[0])
            fail_msg("'%s' was refused without a reason", bad[i]);
    }
    sp_load_target t;
    char err[256];
    sp_load_target_parse("http://example.com/", &t, err, sizeof err);
    assert_non_null(strstr(err, "loopback"));
}

static void test_durations(void **state)
{
    int64_t ns;
    assert_int_equal(sp_load_parse_duration("10s", &ns), 0);
    assert_true(ns == 10000000000LL);
    assert_int_equal(sp_load_parse_duration("500ms", &ns), 0);
    assert_true(ns == 500000000LL);
    assert_int_equal(sp_load_parse_duration("2m", &ns), 0);
    assert_true(ns == 120000000000LL);
    assert_int_equal(sp_load_parse_duration("1.5", &ns), 0);
    assert_true(ns == 1500000000LL);
    assert_int_equal(sp_load_parse_duration("250us", &ns), 0);
    assert_true(ns == 250000LL);
    static const char *const bad[] = {"", "s", "-1s", "10 s", "10sec", "1e400", "nan",
                                      "2d", "25h", "+3s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sp_load_parse_duration(bad[i], &ns) != -EINVAL)
            fail_msg("duration '%s' was accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_urls),
        cmocka_unit_test(test_refused_urls),
        cmocka_unit_test(test_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
