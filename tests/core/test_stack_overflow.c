/* A stack overflow ends the process with a message that names the
 * coroutine and its stack size: through the guard page while guards last,
 * through the canary at the next suspend once they do not
 * (test_stack_overflow@noguard runs with SPINDLE_GUARD_BUDGET=0). */
#include "sp_test.h"
#include <signal.h>
#include <sys/wait.h>

#if defined(__clang__)
#define sp__noinline_test __attribute__((noinline))
#else
#define sp__noinline_test __attribute__((noinline, noclone))
#endif

/* Frames written end to end, so every byte of the stack passed over is
 * written, the canary included; depth is measured in real addresses, as the
 * compiler may merge frames.  Not instrumented by ASan: its redzones around
 * buf are never written, and the 64-byte canary can fall inside them. */
static char *start;
#if SP_ASAN
__attribute__((no_sanitize_address))
#endif
static sp__noinline_test int overflow_by(size_t bytes)
{
    volatile char buf[240];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)i;
    if ((size_t)(start - (char *)buf) > bytes) {
        sp_yield(); /* the suspend that checks the canary */
        return buf[1];
    }
    return overflow_by(bytes) + buf[2];
}

static int overflow_from_here(size_t bytes)
{
    char here;
    start = &here;
    return overflow_by(bytes);
}

static size_t stack_size_of_default(void)
{
    sp_config cfg;
    sp_config_init(&cfg);
    switch (cfg.stack) {
    case SP_STACK_VIRTUAL: return SP_STACK_VIRTUAL_SIZE;
    case SP_STACK_SHARED: return SP_STACK_SHARED_SIZE;
    default: return SP_STACK_FIXED_SIZE;
    }
}

static void *overflower(void *arg)
{
    return IP(overflow_from_here(stack_size_of_default() + 2048));
}

static void *other(void *arg)
{
    for (int i = 0; i < 4; i++)
        sp_yield();
    return NULL;
}

static void child(void *arg)
{
    sp_co_attr at = {.name = "deep-one"};
    sp_co *o = sp_spawn(other, NULL, NULL);
    sp_co *co = sp_spawn(overflower, NULL, &at);
    char line[64];
    snprintf(line, sizeof line, "id=%llu\n", (unsigned long long)sp_co_id(co));
    fputs(line, stderr);
    fflush(stderr);
    sp_join(co, NULL);
    sp_join(o, NULL);
    fputs("survived\n", stderr);
}

static void test_overflow_is_reported(void **state)
{
    int status;
    char err[4096];
    assert_int_equal(sp_test_child(child, NULL, &status, err, sizeof err), 0);
    unsigned long long id = 0;
    assert_int_equal(sscanf(err, "id=%llu", &id), 1);
    char want[160];
    snprintf(want, sizeof want,
             "spindle: stack overflow in coroutine %llu 'deep-one' (stack %zu bytes)",
             id, stack_size_of_default());
    if (!strstr(err, want))
        fail_msg("expected \"%s\" on stderr, got:\n%s", want, err);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_null(strstr(err, "survived"));
}

static void *fine(void *arg)
{
    return IP(overflow_from_here(stack_size_of_default() / 2));
}

static void test_half_the_stack_is_fine(void **state)
{
    void *r;
    assert_int_equal(sp_join(sp_spawn(fine, NULL, NULL), &r), 0);
    assert_true(PI(r) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow_is_reported),
        cmocka_unit_test(test_half_the_stack_is_fine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
