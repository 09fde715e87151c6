/* Regular files are never waited on: read and write on them go straight
 * to libc inside a coroutine, their O_NONBLOCK is never touched, and poll
 * and select report them ready at once. */
#include "hook_test.h"

#include <sys/select.h>

static void *file_io(void *unused)
{
    char path[] = "/tmp/sp_hook_fileXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    sp_co *t = hook_ticker_start();
    usleep(2000);
    long before = hook_ticks;
    static char buf[1 << 20];
    memset(buf, 'f', sizeof buf);
    assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    static char in[1 << 20];
    assert_int_equal(read(fd, in, sizeof in), (ssize_t)sizeof in);
    assert_int_equal(read(fd, in, sizeof in), 0); /* end of file, not a wait */
    assert_memory_equal(buf, in, sizeof in);
    assert_int_equal(hook_ticks, before); /* nothing parked */
    assert_false(hook_real_nonblock(fd));
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(fd, &r);
    FD_SET(fd, &w);
    assert_int_equal(select(fd + 1, &r, &w, NULL, NULL), 2);
    hook_ticker_stop(t);
    close(fd);
    return NULL;
}

static void test_regular_file_passes_through(void **state)
{
    hook_run(SP_HOOK_ON, file_io, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regular_file_passes_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
