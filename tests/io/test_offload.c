/* The offload pool under many concurrent file reads, with buffers on the
 * coroutines' stacks (bounced when those stacks are shared), and the other
 * offloaded calls. */
#include "sp_test.h"
#include <fcntl.h>
#include <netdb.h>
#include <unistd.h>

#define BLOCKS 256
#define BLOCK 4096
static int file_fd;
static char path[64];

static void *read_block(void *arg)
{
    int i = (int)PI(arg);
    unsigned char buf[BLOCK]; /* on the coroutine's stack on purpose */
    ssize_t n = sp_file_pread(file_fd, buf, BLOCK, (off_t)i * BLOCK);
    if (n != BLOCK)
        return IP(0);
    for (int k = 0; k < BLOCK; k++)
        if (buf[k] != (unsigned char)(i + k))
            return IP(0);
    return IP(1);
}

static int setup(void **state)
{
    snprintf(path, sizeof path, "/tmp/spindle-offload-%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    unsigned char b[BLOCK];
    for (int i = 0; i < BLOCKS; i++) {
        for (int k = 0; k < BLOCK; k++)
            b[k] = (unsigned char)(i + k);
        if (write(fd, b, BLOCK) != BLOCK)
            return -1;
    }
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static void test_many_concurrent_reads(void **state)
{
    file_fd = sp_file_open(path, O_RDONLY, 0);
    assert_true(file_fd >= 0);
    sp_co *co[BLOCKS];
    for (int i = 0; i < BLOCKS; i++)
        co[i] = sp_spawn(read_block, IP(i), NULL);
    for (int i = 0; i < BLOCKS; i++) {
        void *ok;
        sp_join(co[i], &ok);
        if (!PI(ok))
            fail_msg("block %d read back wrong", i);
    }
    close(file_fd);
}

static void test_write_sync_read(void **state)
{
    int fd = sp_file_open(path, O_RDWR, 0);
    assert_true(fd >= 0);
    assert_int_equal(sp_file_pwrite(fd, "spindle", 7, 10), 7);
    assert_int_equal(sp_file_fsync(fd), 0);
    char back[8] = {0};
    assert_int_equal(sp_file_pread(fd, back, 7, 10), 7);
    assert_string_equal(back, "spindle");
    close(fd);
    assert_int_equal(sp_file_open("/nonexistent/spindle", O_RDONLY, 0), -1);
    assert_int_equal(errno, ENOENT);
}

static void *square(void *arg) { return IP(PI(arg) * PI(arg)); }

static void test_offload_and_dns(void **state)
{
    void *r;
    assert_int_equal(sp_offload(square, IP(12), &r), 0);
    assert_int_equal(PI(r), 144);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    assert_int_equal(sp_getaddrinfo("localhost", "80", &hints, &res), 0);
    assert_non_null(res);
    freeaddrinfo(res);
    res = NULL;
    assert_int_equal(sp_getaddrinfo("127.0.0.1", "80", &hints, &res), 0);
    freeaddrinfo(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_concurrent_reads),
        cmocka_unit_test(test_write_sync_read),
        cmocka_unit_test(test_offload_and_dns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
