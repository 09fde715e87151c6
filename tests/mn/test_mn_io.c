/* Coroutine I/O under M:N: descriptors owned by the worker that first
 * waits on them, coroutines moving to that worker, and the ways a wait
 * ends (data, close from another coroutine, deadline, cancel, offload). */
#include "sp_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- echo over many socket pairs ---- */

static void *echo_server(void *arg)
{
    int fd = (int)PI(arg);
    char buf[4096];
    ssize_t n;
    while ((n = sp_read(fd, buf, sizeof buf, sp_deadline_ms(20000))) > 0)
        if (sp_write_all(fd, buf, (size_t)n, sp_deadline_ms(20000)) != n)
            return IP(-1);
    sp_close(fd);
    return IP(n == 0 ? 0 : -1);
}

static void *echo_client(void *arg)
{
    int fd = (int)PI(arg);
    char out[3000], in[3000];
    unsigned seed = (unsigned)fd;
    for (int round = 0; round < (SP_TEST_TSAN ? 8 : 40); round++) {
        size_t len = 1 + (size_t)(rand_r(&seed) % sizeof out);
        for (size_t i = 0; i < len; i++)
            out[i] = (char)(round * 31 + (int)i + fd);
        if (sp_write_all(fd, out, len, sp_deadline_ms(20000)) != (ssize_t)len)
            return IP(1);
        size_t got = 0;
        while (got < len) {
            ssize_t n = sp_read(fd, in + got, len - got, sp_deadline_ms(20000));
            if (n <= 0)
                return IP(2);
            got += (size_t)n;
        }
        if (memcmp(in, out, len) != 0)
            return IP(3);
        if (round % 4 == 0)
            sp_yield(); /* a chance to be stolen between rounds */
    }
    sp_close(fd);
    return NULL;
}

static void *main_echo(void *arg)
{
    int pairs = (int)PI(arg);
    sp_co **cs = calloc((size_t)pairs * 2, sizeof *cs);
    for (int i = 0; i < pairs; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        cs[2 * i] = sp_spawn(echo_server, IP(sv[0]), NULL);
        cs[2 * i + 1] = sp_spawn(echo_client, IP(sv[1]), NULL);
    }
    long bad = 0;
    for (int i = 0; i < 2 * pairs; i++) {
        void *r;
        assert_int_equal(sp_join(cs[i], &r), 0);
        bad += r != NULL;
    }
    free(cs);
    return IP(bad);
}

static void test_echo_across_workers(void **state)
{
    (void)state;
    for (int w = 2; w <= 4; w += 2) {
        void *r = IP(-1);
        assert_int_equal(sp_test_run_workers(main_echo, IP(SP_TEST_TSAN ? 40 : 200), &r, w), 0);
        assert_int_equal(PI(r), 0);
    }
}

/* ---- the ways a wait ends ---- */

typedef struct waitres {
    int fd;
    ssize_t rc;
    int err;
} waitres;

static void *reader(void *arg)
{
    waitres *w = arg;
    char c;
    w->rc = sp_read(w->fd, &c, 1, sp_deadline_ms(30000));
    w->err = errno;
    return NULL;
}

static void *spin_elsewhere(void *arg)
{
    /* Keeps one worker busy so the other runs what main spawns next. */
    int64_t end = sp_now() + PI(arg) * 1000000;
    while (sp_now() < end)
        ;
    return NULL;
}

static void *main_close_wakes(void *arg)
{
    (void)arg;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    waitres w = {sv[0], 0, 0};
    sp_co *r = sp_spawn(reader, &w, NULL);
    sp_co *b = sp_spawn(spin_elsewhere, IP(30), NULL);
    sp_sleep_ms(10); /* the reader parks, owning sv[0] on its worker */
    /* From wherever this runs now: sp_close goes to the owner first. */
    assert_int_equal(sp_close(sv[0]), 0);
    sp_join(r, NULL);
    sp_join(b, NULL);
    close(sv[1]);
    return IP(w.rc == -1 && w.err == EBADF);
}

static void test_close_from_another_coroutine_wakes_reader(void **state)
{
    (void)state;
    void *r = NULL;
    assert_int_equal(sp_test_run_workers(main_close_wakes, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 1);
}

static void *timed_reader(void *arg)
{
    int fd = (int)PI(arg);
    char c;
    int64_t t0 = sp_now();
    ssize_t n = sp_read(fd, &c, 1, sp_deadline_ms(20));
    return IP(n == -1 && errno == ETIMEDOUT && sp_now() - t0 >= 20000000);
}

static void *main_cancel_reader(void *arg)
{
    (void)arg;
    enum { K = 64 };
    int sv[K][2];
    waitres w[K];
    sp_co *r[K], *t[K];
    for (int i = 0; i < K; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
        w[i] = (waitres){sv[i][0], 0, 0};
        r[i] = sp_spawn(reader, &w[i], NULL);
        t[i] = sp_spawn(timed_reader, IP(sv[i][1]), NULL);
    }
    sp_sleep_ms(5);
    for (int i = 0; i < K; i++)
        assert_int_equal(sp_cancel(r[i]), 0);
    long ok = 0;
    for (int i = 0; i < K; i++) {
        void *tr;
        sp_join(r[i], NULL);
        sp_join(t[i], &tr);
        ok += w[i].rc == -1 && w[i].err == ECANCELED;
        ok += PI(tr);
        sp_close(sv[i][0]);
        sp_close(sv[i][1]);
    }
    return IP(ok);
}

static void test_cancel_and_deadline_of_reads(void **state)
{
    (void)state;
    void *r = NULL;
    assert_int_equal(sp_test_run_workers(main_cancel_reader, NULL, &r, 2), 0);
    assert_int_equal(PI(r), 128);
}

/* ---- the offload pool from several workers ---- */

static char path[64];

static void *file_reader(void *arg)
{
    int fd = sp_file_open(path, O_RDONLY, 0);
    if (fd < 0)
        return IP(1);
    char buf[16];
    long bad = 0;
    for (int i = 0; i < 20; i++) {
        off_t off = (PI(arg) + i) % 1000;
        if (sp_file_pread(fd, buf, 4, off * 4) != 4 || memcmp(buf, "abcd", 4) != 0)
            bad++;
    }
    close(fd);
    return IP(bad);
}

static void *main_files(void *arg)
{
    (void)arg;
    enum { K = 32 };
    sp_co *cs[K];
    for (int i = 0; i < K; i++)
        cs[i] = sp_spawn(file_reader, IP(i * 7), NULL);
    long bad = 0;
    for (int i = 0; i < K; i++) {
        void *r;
        sp_join(cs[i], &r);
        bad += PI(r);
    }
    return IP(bad);
}

static void test_offload_from_several_workers(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/spindle-mn-io-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 1000; i++)
        fputs("abcd", f);
    fclose(f);
    void *r = IP(-1);
    int rc = sp_test_run_workers(main_files, NULL, &r, 2);
    unlink(path);
    assert_int_equal(rc, 0);
    assert_int_equal(PI(r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_across_workers),
        cmocka_unit_test(test_close_from_another_coroutine_wakes_reader),
        cmocka_unit_test(test_cancel_and_deadline_of_reads),
        cmocka_unit_test(test_offload_from_several_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
