/* Static files never leave the root, whatever the encoding: the router
 * refuses traversal forms, and the opener refuses symlinks out of the root
 * (openat2 RESOLVE_BENEATH, and the openat(O_NOFOLLOW) walk fallback). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http_internal.h"

/* A FIFO must not block the opener; this bounds a regression. */
#define FIFO_ALARM_S 5

static char top[64];
static int root_fd = -1;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fail_msg("could not create %s", path);
}

static int setup(void **state)
{
    char p[256];

    (void)state;
    strcpy(top, "/tmp/sp_http_static_XXXXXX");
    if (!mkdtemp(top))
        return -1;
#define P(s) (snprintf(p, sizeof p, "%s/%s", top, s), p)
    write_file(P("outside.txt"), "secret");
    mkdir(P("root"), 0755);
    mkdir(P("root/d"), 0755);
    mkdir(P("root/%2e%2e"), 0755);
    write_file(P("root/a.txt"), "hello");
    write_file(P("root/d/b.txt"), "bee");
    write_file(P("root/%2e%2e/x"), "literal");
    if (symlink("a.txt", P("root/in")) || symlink("../outside.txt", P("root/esc")) ||
        symlink("/etc/passwd", P("root/abs")) || symlink("d", P("root/dlink")) ||
        symlink("..", P("root/out")) || symlink("/proc/self/root", P("root/magic")) ||
        mkfifo(P("root/fifo"), 0644))
        return -1;
    root_fd = open(P("root"), O_PATH | O_DIRECTORY | O_CLOEXEC);
#undef P
    return root_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    close(root_fd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    return system(cmd) == 0 ? 0 : -1;
}

typedef int (*opener)(int, const char *, struct stat *);

static void expect_opens(opener op, const char *name, const char *rel, const char *content)
{
    struct stat st;
    char buf[32];
    ssize_t n;
    int fd = op(root_fd, rel, &st), fl;

    if (fd < 0)
        fail_msg("%s: expected \"%s\" to open, got errno %d (%s)", name, rel, errno,
                 strerror(errno));
    n = read(fd, buf, sizeof buf);
    if (n != (ssize_t)strlen(content) || memcmp(buf, content, (size_t)n) != 0)
        fail_msg("%s: \"%s\": expected content \"%s\"", name, rel, content);
    if (st.st_size != (off_t)strlen(content))
        fail_msg("%s: \"%s\": expected st filled in", name, rel);
    fl = fcntl(fd, F_GETFL);
    if (fl & O_NONBLOCK)
        fail_msg("%s: expected O_NONBLOCK cleared on \"%s\" (io_uring reads)", name, rel);
    if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
        fail_msg("%s: expected O_CLOEXEC on \"%s\"", name, rel);
    close(fd);
}

static void expect_refused(opener op, const char *name, const char *rel, int status)
{
    struct stat st;
    int fd, err;

    alarm(FIFO_ALARM_S);
    fd = op(root_fd, rel, &st);
    err = errno;
    alarm(0);
    if (fd >= 0) {
        close(fd);
        fail_msg("%s: expected \"%s\" to be refused, it opened", name, rel);
    }
    if (sp_http_static_errno_status(err) != status)
        fail_msg("%s: \"%s\": expected status %d, errno %d (%s) maps to %d", name, rel,
                 status, err, strerror(err), sp_http_static_errno_status(err));
}

static void check_common(opener op, const char *name)
{
    expect_opens(op, name, "a.txt", "hello");
    expect_opens(op, name, "d/b.txt", "bee");
    expect_opens(op, name, "d//b.txt", "bee");
    expect_opens(op, name, "%2e%2e/x", "literal"); /* a name, not a dot segment */
    expect_refused(op, name, "esc", 403);         /* symlink out of the root */
    expect_refused(op, name, "abs", 403);         /* absolute symlink */
    expect_refused(op, name, "magic/etc/passwd", 403); /* magic link */
    expect_refused(op, name, "../outside.txt", 403);
    expect_refused(op, name, "/etc/passwd", 403);
    expect_refused(op, name, "d", 403);           /* a directory */
    expect_refused(op, name, "fifo", 403);        /* not regular, and no hang */
    expect_refused(op, name, "missing", 404);
    expect_refused(op, name, "a.txt/x", 404);
}

static void test_openat2(void **state)
{
    (void)state;
    check_common(sp_http_static_open, "openat2");
    /* symlinks that stay inside are followed by openat2 */
    expect_opens(sp_http_static_open, "openat2", "in", "hello");
    expect_opens(sp_http_static_open, "openat2", "dlink/b.txt", "bee");
    expect_refused(sp_http_static_open, "openat2", "out/outside.txt", 403);
}

static void test_walk_fallback(void **state)
{
    (void)state;
    check_common(sp__http_static_open_walk, "walk");
    /* the walk refuses every symlink, even one that stays inside */
    expect_refused(sp__http_static_open_walk, "walk", "in", 403);
    expect_refused(sp__http_static_open_walk, "walk", "dlink/b.txt", 403);
    expect_refused(sp__http_static_open_walk, "walk", "out/outside.txt", 403);
    expect_refused(sp__http_static_open_walk, "walk", "d/./../../outside.txt", 403);
}

/* Every traversal spelling is refused by the router, before any open. */
static void test_router_refuses_traversal(void **state)
{
    static const char *const bad[] = {
        "/static/../outside.txt", "/static/%2e%2e/outside.txt",
        "/static/%2E%2E/outside.txt", "/static/%2E./outside.txt",
        "/static/.%2e/outside.txt", "/static/..%2foutside.txt",
        "/static/..%2Foutside.txt", "/static/d/../../outside.txt",
        "/static/d/%2e%2e/%2e%2e/outside.txt", "/static/..%5coutside.txt",
        "/static/d\\..\\..\\outside.txt", "/static//etc/passwd",
        "/static/%2fetc/passwd", "/static/./a.txt", "/static/d/.",
        "/static/d/..", "/static/..",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[256];
        sp_http_header h[4];
        sp_http_request req;
        sp_http_action act;
        int n = snprintf(msg, sizeof msg, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", bad[i]);

        sp_http_request_init(&req, h, 4, NULL);
        if (sp_http_parse_request(&req, msg, (size_t)n) != n)
            fail_msg("\"%s\" did not parse", bad[i]);
        sp_http_route(&req, &act);
        if (act.kind != SP_HTTP_ACT_RESPOND || act.status != 403)
            fail_msg("\"%s\": expected 403 from the router, got kind %d status %d arg \"%s\"",
                     bad[i], act.kind, act.status, act.arg);
    }
}

/* Double encoding decodes once: a literal name, opened inside the root. */
static void test_double_encoding_stays_literal(void **state)
{
    const char msg[] = "GET /static/%252e%252e/x HTTP/1.1\r\nHost: h\r\n\r\n";
    sp_http_header h[4];
    sp_http_request req;
    sp_http_action act;

    (void)state;
    sp_http_request_init(&req, h, 4, NULL);
    assert_int_equal(sp_http_parse_request(&req, msg, sizeof msg - 1), sizeof msg - 1);
    sp_http_route(&req, &act);
    assert_int_equal(act.kind, SP_HTTP_ACT_STATIC);
    assert_string_equal(act.arg, "%2e%2e/x");
    expect_opens(sp_http_static_open, "openat2", act.arg, "literal");
}

static void test_errno_status(void **state)
{
    (void)state;
    assert_int_equal(sp_http_static_errno_status(ENOENT), 404);
    assert_int_equal(sp_http_static_errno_status(ENOTDIR), 404);
    assert_int_equal(sp_http_static_errno_status(EXDEV), 403);
    assert_int_equal(sp_http_static_errno_status(ELOOP), 403);
    assert_int_equal(sp_http_static_errno_status(EACCES), 403);
    assert_int_equal(sp_http_static_errno_status(EIO), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openat2),
        cmocka_unit_test(test_walk_fallback),
        cmocka_unit_test(test_router_refuses_traversal),
        cmocka_unit_test(test_double_encoding_stays_literal),
        cmocka_unit_test(test_errno_status),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
