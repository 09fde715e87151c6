/* The service's routes: hello, sleep, static, CGI, 404 and 405. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "spindle/http.h"

struct route_case {
    const char *line; /* method SP target */
    sp_http_action_kind kind;
    int status;
    const char *arg;   /* STATIC path / CGI name */
    const char *info;  /* CGI PATH_INFO */
    unsigned sleep_ms;
    const char *allow;
};

static const struct route_case cases[] = {
    { .line = "GET /", .kind = SP_HTTP_ACT_RESPOND, .status = 200 },
    { .line = "HEAD /", .kind = SP_HTTP_ACT_RESPOND, .status = 200 },
    { .line = "GET /?x=1", .kind = SP_HTTP_ACT_RESPOND, .status = 200 },
    { .line = "POST /", .kind = SP_HTTP_ACT_RESPOND, .status = 405, .allow = "GET, HEAD" },
    { .line = "GET http://h/", .kind = SP_HTTP_ACT_RESPOND, .status = 200 },
    { .line = "GET /sleep?ms=250", .kind = SP_HTTP_ACT_SLEEP, .status = 200, .sleep_ms = 250 },
    { .line = "GET /sleep?ms=0", .kind = SP_HTTP_ACT_SLEEP, .status = 200, .sleep_ms = 0 },
    { .line = "GET /sleep?ms=60000", .kind = SP_HTTP_ACT_SLEEP, .status = 200, .sleep_ms = 60000 },
    { .line = "GET /sleep?a=b&ms=7&c", .kind = SP_HTTP_ACT_SLEEP, .status = 200, .sleep_ms = 7 },
    { .line = "HEAD /sleep?ms=1", .kind = SP_HTTP_ACT_SLEEP, .status = 200, .sleep_ms = 1 },
    { .line = "GET /sleep?ms=60001", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "GET /sleep?ms=99999999999999999999", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "GET /sleep?ms=-1", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "GET /sleep?ms=1e3", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "GET /sleep?ms=", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "GET /sleep", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "GET /sleep?mss=1", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "POST /sleep?ms=1", .kind = SP_HTTP_ACT_RESPOND, .status = 405, .allow = "GET, HEAD" },
    { .line = "GET /sleep/x", .kind = SP_HTTP_ACT_RESPOND, .status = 404 },
    { .line = "GET /static/a.txt", .kind = SP_HTTP_ACT_STATIC, .status = 200, .arg = "a.txt" },
    { .line = "GET /static/d/b%20c.html", .kind = SP_HTTP_ACT_STATIC, .status = 200, .arg = "d/b c.html" },
    { .line = "GET /%73tatic/a", .kind = SP_HTTP_ACT_STATIC, .status = 200, .arg = "a" },
    { .line = "GET /static/", .kind = SP_HTTP_ACT_RESPOND, .status = 404 },
    { .line = "GET /static", .kind = SP_HTTP_ACT_RESPOND, .status = 404 },
    { .line = "PUT /static/a", .kind = SP_HTTP_ACT_RESPOND, .status = 405, .allow = "GET, HEAD" },
    { .line = "GET /cgi-bin/hello", .kind = SP_HTTP_ACT_CGI, .status = 200, .arg = "hello", .info = "" },
    { .line = "POST /cgi-bin/form.py", .kind = SP_HTTP_ACT_CGI, .status = 200, .arg = "form.py", .info = "" },
    { .line = "GET /cgi-bin/env/a/b%2Fc?q", .kind = SP_HTTP_ACT_CGI, .status = 200, .arg = "env", .info = "/a/b/c" },
    { .line = "PUT /cgi-bin/x", .kind = SP_HTTP_ACT_RESPOND, .status = 405, .allow = "GET, HEAD, POST" },
    { .line = "GET /cgi-bin/", .kind = SP_HTTP_ACT_RESPOND, .status = 403 },
    { .line = "GET /cgi-bin/..", .kind = SP_HTTP_ACT_RESPOND, .status = 403 },
    { .line = "GET /cgi-bin/...", .kind = SP_HTTP_ACT_RESPOND, .status = 403 },
    { .line = "GET /cgi-bin/%2e%2e/x", .kind = SP_HTTP_ACT_RESPOND, .status = 403 },
    { .line = "GET /cgi-bin/.hidden", .kind = SP_HTTP_ACT_RESPOND, .status = 403 },
    { .line = "GET /cgi-bin/a;b", .kind = SP_HTTP_ACT_RESPOND, .status = 403 },
    { .line = "GET /cgi-bin//x", .kind = SP_HTTP_ACT_RESPOND, .status = 403 },
    { .line = "GET /nothing", .kind = SP_HTTP_ACT_RESPOND, .status = 404 },
    { .line = "DELETE /nothing", .kind = SP_HTTP_ACT_RESPOND, .status = 404 },
    { .line = "OPTIONS *", .kind = SP_HTTP_ACT_RESPOND, .status = 404 },
    { .line = "GET /%zz", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "GET /%4", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
    { .line = "GET /a%00", .kind = SP_HTTP_ACT_RESPOND, .status = 400 },
};

static void test_routes(void **state)
{
    size_t i, failures = 0;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct route_case *c = &cases[i];
        char msg[256];
        sp_http_header h[8];
        sp_http_request req;
        sp_http_action act;
        int n = snprintf(msg, sizeof msg, "%s HTTP/1.1\r\nHost: h\r\n\r\n", c->line);

        sp_http_request_init(&req, h, 8, NULL);
        if (sp_http_parse_request(&req, msg, (size_t)n) != n)
            fail_msg("\"%s\" did not parse", c->line);
        sp_http_route(&req, &act);
        if (act.kind != c->kind || act.status != c->status ||
            (c->kind == SP_HTTP_ACT_SLEEP && act.sleep_ms != c->sleep_ms) ||
            (c->arg && strcmp(act.arg, c->arg) != 0) ||
            (c->arg && act.arg_len != strlen(c->arg)) ||
            (c->info && (strcmp(act.arg + act.info_off, c->info) != 0 ||
                         act.info_len != strlen(c->info))) ||
            ((c->allow || act.allow) &&
             (!c->allow || !act.allow || strcmp(c->allow, act.allow) != 0))) {
            print_error("\"%s\": expected kind %d status %d arg \"%s\" info \"%s\" ms %u "
                        "allow \"%s\"; got kind %d status %d arg \"%s\" info \"%s\" ms %u "
                        "allow \"%s\"\n",
                        c->line, c->kind, c->status, c->arg ? c->arg : "",
                        c->info ? c->info : "", c->sleep_ms, c->allow ? c->allow : "",
                        act.kind, act.status, act.arg, act.arg + act.info_off,
                        act.sleep_ms, act.allow ? act.allow : "");
            failures++;
        }
    }
    if (failures)
        fail_msg("%zu routes were not what was expected", failures);
}

/* A decoded path longer than SP_HTTP_PATH_MAX is refused, not truncated. */
static void test_long_path(void **state)
{
    static char msg[4096];
    sp_http_header h[8];
    sp_http_request req;
    sp_http_action act;
    int n;

    (void)state;
    n = sprintf(msg, "GET /static/");
    memset(msg + n, 'a', 1100);
    n += 1100;
    n += sprintf(msg + n, " HTTP/1.1\r\nHost: h\r\n\r\n");
    sp_http_request_init(&req, h, 8, NULL);
    assert_int_equal(sp_http_parse_request(&req, msg, (size_t)n), n);
    sp_http_route(&req, &act);
    if (act.kind != SP_HTTP_ACT_RESPOND || act.status != 414)
        fail_msg("expected 414 for a path over SP_HTTP_PATH_MAX, got kind %d status %d",
                 act.kind, act.status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_long_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
