/* read, write, readv, writev inside coroutines: a call that would block
 * parks its coroutine (others run meanwhile), returns what the blocking
 * call returns, and a blocking write moves everything it was given. */
#include "hook_test.h"

#include <sys/uio.h>

static int sv[2];
static char got[64];
static ssize_t got_n;

static void *late_writer(void *unused)
{
    usleep(20000);
    assert_int_equal(write(sv[1], "ping", 4), 4);
    return NULL;
}

static void *read_parks(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    sp_co *t = hook_ticker_start();
    sp_co *w = sp_spawn(late_writer, NULL, NULL);
    int64_t t0 = sp_now();
    errno = 12345;
    got_n = read(sv[0], got, sizeof got);
    int e = errno;
    int64_t ms = hook_ms_since(t0);
    long ticks = hook_ticks;
    hook_ticker_stop(t);
    sp_join(w, NULL);
    assert_int_equal(got_n, 4);
    assert_int_equal(e, 12345); /* success leaves errno alone, EAGAIN on the way or not */
    assert_memory_equal(got, "ping", 4);
    assert_true(ms >= 15);
    assert_true(ticks >= 1); /* the thread ran others while read waited */
    /* The program asked for a blocking socket and still sees one, though
     * the runtime made it non-blocking underneath. */
    assert_true(hook_real_nonblock(sv[0]));
    assert_int_equal(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_read_parks(void **state)
{
    hook_run(SP_HOOK_ON, read_parks, NULL);
}

/* ---- a blocking write of more than the socket holds ---- */

#define BIG (4u << 20)
static unsigned char *big_out, *big_in;
static int tcp[2];

static void *drain(void *unused)
{
    size_t n = 0;
    while (n < BIG) {
        ssize_t r = read(tcp[1], big_in + n, BIG - n);
        assert_true(r > 0);
        n += (size_t)r;
    }
    return NULL;
}

static void *write_moves_all(void *unused)
{
    hook_tcp_pair(tcp);
    sp_co *d = sp_spawn(drain, NULL, NULL);
    ssize_t w = write(tcp[0], big_out, BIG);
    assert_int_equal(w, (ssize_t)BIG); /* not a short count: it was blocking */
    sp_join(d, NULL);
    assert_memory_equal(big_out, big_in, BIG);
    close(tcp[0]);
    close(tcp[1]);
    return NULL;
}

static void test_write_moves_all(void **state)
{
    big_out = malloc(BIG);
    big_in = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big_out[i] = (unsigned char)(i * 7 + (i >> 12));
    hook_run(SP_HOOK_ON, write_moves_all, NULL);
    free(big_out);
    free(big_in);
}

/* ---- readv and writev, on a pipe ---- */

static int pp[2];
#define VBIG (1u << 20)
static char *vbuf;
static volatile int small_read;

static void *vreader(void *unused)
{
    char a[3], b[100];
    struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    ssize_t n = readv(pp[0], iov, 2); /* parks: nothing written yet */
    assert_int_equal(n, 11);
    assert_memory_equal(a, "hel", 3);
    assert_memory_equal(b, "lo world", 8);
    small_read = 1;
    /* Then a vectored write bigger than the pipe: read it all back. */
    size_t total = 0;
    while (total < VBIG) {
        ssize_t r = read(pp[0], vbuf + total, VBIG - total);
        assert_true(r > 0);
        total += (size_t)r;
    }
    return NULL;
}

static void *readv_writev(void *unused)
{
    assert_int_equal(pipe(pp), 0);
    sp_co *r = sp_spawn(vreader, NULL, NULL);
    sp_yield(); /* the reader parks in readv */
    struct iovec out[3] = {{"hel", 3}, {"lo ", 3}, {"world", 5}};
    small_read = 0;
    assert_int_equal(writev(pp[1], out, 3), 11);
    while (!small_read)
        usleep(1000); /* the reader takes those 11 bytes alone */
    /* 1 MiB in 7 pieces of odd sizes through a 64 KiB pipe: the whole
     * count comes back, which takes writev resuming mid-vector. */
    static char src[VBIG];
    for (size_t i = 0; i < VBIG; i++)
        src[i] = (char)(i % 251);
    size_t cut[8] = {0, 1, 4097, 70000, 70001, 300000, 800000, VBIG};
    struct iovec v[7];
    for (int i = 0; i < 7; i++)
        v[i] = (struct iovec){src + cut[i], cut[i + 1] - cut[i]};
    assert_int_equal(writev(pp[1], v, 7), (ssize_t)VBIG);
    sp_join(r, NULL);
    assert_memory_equal(src, vbuf, VBIG);
    close(pp[0]);
    close(pp[1]);
    return NULL;
}

static void test_readv_writev(void **state)
{
    vbuf = malloc(VBIG);
    hook_run(SP_HOOK_ON, readv_writev, NULL);
    free(vbuf);
}

/* ---- end of file after a park ---- */

static void *closer(void *unused)
{
    usleep(5000);
    close(sv[1]);
    return NULL;
}

static void *read_eof(void *unused)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    sp_co *c = sp_spawn(closer, NULL, NULL);
    char b[8];
    assert_int_equal(read(sv[0], b, sizeof b), 0);
    sp_join(c, NULL);
    close(sv[0]);
    return NULL;
}

static void test_read_eof(void **state)
{
    hook_run(SP_HOOK_ON, read_eof, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_parks),
        cmocka_unit_test(test_write_moves_all),
        cmocka_unit_test(test_readv_writev),
        cmocka_unit_test(test_read_eof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
