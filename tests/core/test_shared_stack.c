/* Shared-stack coroutines keep their frames across switches: locals, arrays
 * and pointers into their own stack survive being copied out and back, also
 * when mixed with fixed-stack coroutines. */
#include "sp_test.h"

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void *frame_keeper(void *arg)
{
    uint64_t seed = (uint64_t)PI(arg);
    size_t n = 16 + seed % 200; /* frames of different depths */
    uint64_t buf[256];
    uint64_t *self_ptr = &buf[n / 2]; /* a pointer into our own stack */
    for (size_t i = 0; i < n; i++)
        buf[i] = mix(seed + i);
    for (int round = 0; round < 10; round++) {
        sp_yield();
        for (size_t i = 0; i < n; i++)
            if (buf[i] != mix(seed + i + (uint64_t)round))
                return IP(0);
        if (*self_ptr != buf[n / 2])
            return IP(0);
        for (size_t i = 0; i < n; i++)
            buf[i] = mix(seed + i + (uint64_t)round + 1);
    }
    return IP(1);
}

static void run_mix(sp_stack_kind a, sp_stack_kind b, int count)
{
    sp_co **co = calloc((size_t)count, sizeof *co);
    for (int i = 0; i < count; i++) {
        sp_co_attr at = {.stack = (i % 2) ? a : b};
        co[i] = sp_spawn(frame_keeper, IP(i * 7919 + 1), &at);
        assert_non_null(co[i]);
    }
    for (int i = 0; i < count; i++) {
        void *r;
        assert_int_equal(sp_join(co[i], &r), 0);
        if (!PI(r))
            fail_msg("coroutine %d found its frames corrupted", i);
    }
    free(co);
}

static void test_shared_only(void **state) { run_mix(SP_STACK_SHARED, SP_STACK_SHARED, 200); }
static void test_shared_with_fixed(void **state) { run_mix(SP_STACK_SHARED, SP_STACK_FIXED, 200); }
static void test_shared_with_virtual(void **state) { run_mix(SP_STACK_SHARED, SP_STACK_VIRTUAL, 50); }

static void *recurse(int depth)
{
    volatile char pad[512];
    pad[0] = (char)depth;
    if (depth == 0) {
        sp_yield();
        return IP(pad[0]);
    }
    void *r = recurse(depth - 1);
    return IP(PI(r) + pad[0]);
}
static void *deep(void *arg) { return recurse((int)PI(arg)); }

static void test_deep_shared_frames(void **state)
{
    /* ~100 KiB of live frames per coroutine, copied out and in. */
    sp_co_attr at = {.stack = SP_STACK_SHARED};
    sp_co *a = sp_spawn(deep, IP(120), &at), *b = sp_spawn(deep, IP(100), &at);
    void *ra, *rb;
    sp_join(a, &ra);
    sp_join(b, &rb);
    assert_int_equal(PI(ra), 120 * 121 / 2);
    assert_int_equal(PI(rb), 100 * 101 / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_only),
        cmocka_unit_test(test_shared_with_fixed),
        cmocka_unit_test(test_shared_with_virtual),
        cmocka_unit_test(test_deep_shared_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
