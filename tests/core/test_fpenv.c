/* The control bits of MXCSR and the x87 control word are callee-saved: two
 * coroutines in different rounding modes each keep their own across
 * switches; the status flags are the thread's.  Under
 * SPINDLE_FPENV=shared (documented opt-out) a thread's coroutines share one
 * environment, and the test checks that instead. */
#include "sp_test.h"
#include <fenv.h>
#include <xmmintrin.h>

static int shared_mode(void)
{
    const char *e = getenv("SPINDLE_FPENV");
    return e && strcmp(e, "shared") == 0;
}

static void *rounder(void *arg)
{
    int mode = (int)PI(arg);
    fesetround(mode);
    volatile float one = 1.0f, three = 3.0f;
    int ok = 1;
    for (int i = 0; i < 20; i++) {
        sp_yield();
        if (fegetround() != mode)
            ok = 0;
        /* SSE arithmetic obeys MXCSR: 1/3 rounds differently up and down. */
        float q = one / three;
        float ref_up = 0.333333343f, ref_down = 0.333333313f;
        if (mode == FE_UPWARD && q != ref_up)
            ok = 0;
        if (mode == FE_DOWNWARD && q != ref_down)
            ok = 0;
    }
    fesetround(FE_TONEAREST);
    return IP(ok);
}

static void test_rounding_modes_are_per_coroutine(void **state)
{
    if (shared_mode())
        skip();
    sp_co *up = sp_spawn(rounder, IP(FE_UPWARD), NULL);
    sp_co *down = sp_spawn(rounder, IP(FE_DOWNWARD), NULL);
    void *a, *b;
    sp_join(up, &a);
    sp_join(down, &b);
    assert_true(PI(a));
    assert_true(PI(b));
    assert_int_equal(fegetround(), FE_TONEAREST);
}

static void *ftz_setter(void *arg)
{
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ and DAZ */
    for (int i = 0; i < 10; i++)
        sp_yield();
    int ok = (_mm_getcsr() & 0x8040) == 0x8040;
    _mm_setcsr(_mm_getcsr() & ~0x8040u);
    return IP(ok);
}

static void *ftz_observer(void *arg)
{
    int ok = 1;
    for (int i = 0; i < 10; i++) {
        sp_yield();
        if (_mm_getcsr() & 0x8040)
            ok = 0;
    }
    return IP(ok);
}

static void test_mxcsr_flags_do_not_leak(void **state)
{
    if (shared_mode())
        skip();
    sp_co *a = sp_spawn(ftz_setter, NULL, NULL);
    sp_co *b = sp_spawn(ftz_observer, NULL, NULL);
    void *ra, *rb;
    sp_join(a, &ra);
    sp_join(b, &rb);
    assert_true(PI(ra));
    assert_true(PI(rb));
}

/* The status bits of MXCSR (the sticky exception flags) are caller-saved in
 * the ABI, so the asm switch leaves them to the thread and reloads MXCSR
 * only when the control bits differ: two coroutines whose flags differ (one
 * did an inexact division) must not make every switch pay a MXCSR reload,
 * which costs tens of nanoseconds when the value changes.  ucontext and
 * sjlj restore the whole register, as glibc does. */
static int asm_ctx(void)
{
    const char *e = getenv("SPINDLE_CTX");
    return !e || !*e || strcmp(e, "asm") == 0;
}

static void *inexact_raiser(void *arg)
{
    fesetround(FE_UPWARD);
    volatile double one = 1.0, three = 3.0;
    volatile double q = one / three; /* raises FE_INEXACT */
    (void)q;
    int ok = fetestexcept(FE_INEXACT) != 0;
    sp_yield();
    ok = ok && fegetround() == FE_UPWARD;
    fesetround(FE_TONEAREST);
    return IP(ok);
}

static void *flag_observer(void *arg)
{
    int *seen = arg;
    feclearexcept(FE_ALL_EXCEPT);
    sp_yield(); /* the raiser runs, raises, yields back */
    *seen = (_mm_getcsr() & 0x3f) != 0;
    return IP(fegetround() == FE_TONEAREST);
}

static void test_status_flags_belong_to_the_thread(void **state)
{
    if (shared_mode() || !asm_ctx())
        skip();
    int seen = 0;
    sp_co *o = sp_spawn(flag_observer, &seen, NULL);
    sp_co *r = sp_spawn(inexact_raiser, NULL, NULL);
    void *ro, *rr;
    sp_join(o, &ro);
    sp_join(r, &rr);
    /* Control bits stayed with each coroutine... */
    assert_true(PI(ro));
    assert_true(PI(rr));
    /* ...and the raiser's flag reached the observer. */
    assert_true(seen);
    feclearexcept(FE_ALL_EXCEPT);
}

static void *set_up_and_yield(void *arg)
{
    fesetround(FE_UPWARD);
    sp_yield();
    return NULL;
}

static void test_shared_environment_is_shared(void **state)
{
    if (!shared_mode())
        skip();
    sp_co *a = sp_spawn(set_up_and_yield, NULL, NULL);
    sp_yield();
    /* a changed the thread's rounding mode, and the root sees it. */
    assert_int_equal(fegetround(), FE_UPWARD);
    sp_join(a, NULL);
    fesetround(FE_TONEAREST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding_modes_are_per_coroutine),
        cmocka_unit_test(test_mxcsr_flags_do_not_leak),
        cmocka_unit_test(test_status_flags_belong_to_the_thread),
        cmocka_unit_test(test_shared_environment_is_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
