/* Content-Type from the extension. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "spindle/http.h"

static void test_types(void **state)
{
    static const char *const map[][2] = {
        { "index.html", "text/html; charset=utf-8" },
        { "a/b/page.htm", "text/html; charset=utf-8" },
        { "style.css", "text/css; charset=utf-8" },
        { "app.js", "text/javascript; charset=utf-8" },
        { "data.json", "application/json" },
        { "notes.txt", "text/plain; charset=utf-8" },
        { "p.png", "image/png" },
        { "p.jpg", "image/jpeg" },
        { "p.jpeg", "image/jpeg" },
        { "p.gif", "image/gif" },
        { "p.svg", "image/svg+xml" },
        { "favicon.ico", "image/vnd.microsoft.icon" },
        { "m.wasm", "application/wasm" },
        { "doc.pdf", "application/pdf" },
        { "UPPER.HTML", "text/html; charset=utf-8" },
        { "Mixed.Js", "text/javascript; charset=utf-8" },
        { "archive.tar.gz", "application/octet-stream" },
        { "noext", "application/octet-stream" },
        { "dir.html/file", "application/octet-stream" },
        { "trailing.", "application/octet-stream" },
        { ".html", "text/html; charset=utf-8" },
        { "x.htmlx", "application/octet-stream" },
        { "x.ht", "application/octet-stream" },
        { "", "application/octet-stream" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *got = sp_http_content_type(map[i][0], strlen(map[i][0]));

        if (strcmp(got, map[i][1]) != 0)
            fail_msg("\"%s\": expected %s, got %s", map[i][0], map[i][1], got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
