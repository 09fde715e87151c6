/* The CGI/1.1 environment (RFC 3875 §4.1). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "spindle/http.h"

struct env_out {
    char *envp[64];
    char buf[4096];
    int n;
};

static void build(const char *msg, const sp_http_cgi_info *info, struct env_out *o,
                  size_t env_cap, size_t buf_cap)
{
    static sp_http_header h[32];
    static sp_http_request req;
    static sp_http_action act;

    sp_http_request_init(&req, h, 32, NULL);
    if (sp_http_parse_request(&req, msg, strlen(msg)) <= 0)
        fail_msg("request did not parse: %s", msg);
    if (sp_http_route(&req, &act) != SP_HTTP_ACT_CGI)
        fail_msg("expected a CGI route for: %s", msg);
    o->n = sp_http_cgi_env(&req, &act, info, o->envp, env_cap, o->buf, buf_cap);
}

static void test_full_environment(void **state)
{
    static const char *const want[] = {
        "GATEWAY_INTERFACE=CGI/1.1",
        "SERVER_PROTOCOL=HTTP/1.1",
        "SERVER_SOFTWARE=spindle",
        "REQUEST_METHOD=POST",
        "QUERY_STRING=a=1&b=%20",
        "REQUEST_URI=/cgi-bin/env/x%2Fy?a=1&b=%20",
        "SCRIPT_NAME=/cgi-bin/env",
        "PATH_INFO=/x/y",
        "CONTENT_LENGTH=5",
        "CONTENT_TYPE=application/x-www-form-urlencoded",
        "REMOTE_ADDR=127.0.0.1",
        "REMOTE_PORT=54321",
        "SERVER_NAME=example.com",
        "SERVER_PORT=8080",
        "HTTP_HOST=example.com:8080",
        "HTTP_USER_AGENT=t",
        "HTTP_ACCEPT=a, b",
        "HTTP_X_CUSTOM_HEADER=v",
        NULL,
    };
    const sp_http_cgi_info info = { "127.0.0.1", 54321, NULL, 8080, 5 };
    struct env_out o;
    int i;

    (void)state;
    build("POST /cgi-bin/env/x%2Fy?a=1&b=%20 HTTP/1.1\r\n"
          "Host: example.com:8080\r\nUser-Agent: t\r\nAccept: a\r\n"
          "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n"
          "Proxy: http://evil:1\r\nX_Forwarded_For: spoof\r\nAuthorization: Basic xyz\r\n"
          "Accept: b\r\nConnection: keep-alive\r\nx-custom-Header: v\r\n\r\n",
          &info, &o, 64, sizeof o.buf);
    for (i = 0; want[i] || i < o.n; i++) {
        if (!want[i] || i >= o.n || strcmp(want[i], o.envp[i]) != 0)
            fail_msg("entry %d: expected \"%s\", got \"%s\"", i, want[i] ? want[i] : "(end)",
                     i < o.n ? o.envp[i] : "(end)");
    }
    assert_null(o.envp[o.n]);
    /* httpoxy: "Proxy" never becomes HTTP_PROXY */
    for (i = 0; i < o.n; i++)
        if (strncmp(o.envp[i], "HTTP_PROXY", 10) == 0)
            fail_msg("expected no HTTP_PROXY (httpoxy), got %s", o.envp[i]);
}

static const char *get(const struct env_out *o, const char *name)
{
    size_t n = strlen(name);
    int i;

    for (i = 0; i < o->n; i++)
        if (strncmp(o->envp[i], name, n) == 0 && o->envp[i][n] == '=')
            return o->envp[i] + n + 1;
    return NULL;
}

static void test_server_name_and_optional_vars(void **state)
{
    sp_http_cgi_info info = { "::1", 1, NULL, 80, -1 };
    struct env_out o;

    (void)state;
    build("GET /cgi-bin/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &info, &o, 64, sizeof o.buf);
    assert_string_equal(get(&o, "SERVER_NAME"), "[::1]");
    assert_string_equal(get(&o, "QUERY_STRING"), ""); /* set even when empty */
    assert_null(get(&o, "PATH_INFO"));                /* absent when empty */
    assert_null(get(&o, "CONTENT_LENGTH"));           /* no body */
    assert_null(get(&o, "CONTENT_TYPE"));
    assert_string_equal(get(&o, "REQUEST_METHOD"), "GET");
    build("GET /cgi-bin/x HTTP/1.0\r\n\r\n", &info, &o, 64, sizeof o.buf);
    assert_string_equal(get(&o, "SERVER_NAME"), "localhost");
    assert_string_equal(get(&o, "SERVER_PROTOCOL"), "HTTP/1.0");
    info.server_name = "configured.example";
    build("GET /cgi-bin/x HTTP/1.1\r\nHost: h\r\n\r\n", &info, &o, 64, sizeof o.buf);
    assert_string_equal(get(&o, "SERVER_NAME"), "configured.example");
}

static void test_no_room(void **state)
{
    const sp_http_cgi_info info = { "127.0.0.1", 1, NULL, 80, -1 };
    struct env_out o;

    (void)state;
    build("GET /cgi-bin/x HTTP/1.1\r\nHost: h\r\n\r\n", &info, &o, 64, 100);
    if (o.n != -ENOBUFS)
        fail_msg("expected -ENOBUFS with a 100-byte string buffer, got %d", o.n);
    build("GET /cgi-bin/x HTTP/1.1\r\nHost: h\r\n\r\n", &info, &o, 5, sizeof o.buf);
    if (o.n != -ENOBUFS)
        fail_msg("expected -ENOBUFS with 5 env slots, got %d", o.n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_environment),
        cmocka_unit_test(test_server_name_and_optional_vars),
        cmocka_unit_test(test_no_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
