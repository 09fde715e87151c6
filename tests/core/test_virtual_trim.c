/* A virtual stack gives back what one deep call touched once it returns
 * to the pool, and keeps its top pages. */
#include "sp_test.h"
#include <sys/mman.h>
#include <unistd.h>

static char *deepest;

static int touch(int depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[1023] = 1;
    if (depth == 0) {
        deepest = (char *)&buf[0];
        return buf[0];
    }
    return touch(depth - 1) + buf[1023];
}

static void *deep(void *arg) { return IP(touch(512)); } /* ~540 KiB */

static int resident(void *addr)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char v = 0;
    void *p = (void *)((uintptr_t)addr & ~(uintptr_t)(page - 1));
    if (mincore(p, (size_t)page, &v) != 0)
        return -1;
    return v & 1;
}

static void test_deep_pages_returned(void **state)
{
    sp_co_attr at = {.stack = SP_STACK_VIRTUAL};
    sp_co *co = sp_spawn(deep, NULL, &at);
    void *r;
    assert_int_equal(sp_join(co, &r), 0);
    assert_int_equal(PI(r), 512);
    assert_non_null(deepest);
    assert_int_equal(resident(deepest), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_pages_returned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
