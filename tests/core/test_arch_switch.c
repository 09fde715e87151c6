/* The asm backend on its own: transfer values, the link context when an
 * entry returns, stack alignment, and callee-saved registers. */
#include "sp_test.h"
#include "arch/ctx.h"

static void *main_sp, *co_sp;
static char stack[64 * 1024] __attribute__((aligned(16)));
static uintptr_t entry_rsp;

static void echo_entry(void *t)
{
    __asm__ volatile("movq %%rsp, %0" : "=r"(entry_rsp));
    intptr_t v = PI(t);
    for (;;)
        v = PI(sp__asm_switch(&co_sp, main_sp, IP(v * 2)));
}

static void test_transfer_and_alignment(void **state)
{
    co_sp = sp__asm_make(stack + sizeof stack, echo_entry, NULL);
    for (intptr_t i = 1; i < 100; i++) {
        intptr_t r = PI(sp__asm_switch(&main_sp, co_sp, IP(i)));
        assert_int_equal(r, i * 2);
    }
    /* Inside a function the ABI wants rsp+8 to be 16-aligned at entry;
     * after the prologue pushes rbp, rsp is 16-aligned. */
    assert_int_equal(entry_rsp % 16, 0);
}

static int returned_value;
static void returning_entry(void *t)
{
    returned_value = (int)PI(t);
}

static void test_entry_return_goes_to_link(void **state)
{
    co_sp = sp__asm_make(stack + sizeof stack, returning_entry, &main_sp);
    void *r = sp__asm_switch(&main_sp, co_sp, IP(42));
    assert_int_equal(returned_value, 42);
    assert_null(r); /* the link context gets a NULL transfer */
}

/* Sets every callee-saved register to a pattern, switches away and back
 * (the other side clobbers them), then reads them back. */
static void clobber_entry(void *t)
{
    for (;;) {
        __asm__ volatile("movq $-1, %%rbx; movq $-1, %%r12; movq $-1, %%r13;"
                         "movq $-1, %%r14; movq $-1, %%r15"
                         ::: "rbx", "r12", "r13", "r14", "r15");
        sp__asm_switch(&co_sp, main_sp, NULL);
    }
}

static void test_callee_saved_survive(void **state)
{
    co_sp = sp__asm_make(stack + sizeof stack, clobber_entry, NULL);
    static uint64_t out[5];
    __asm__ volatile(
        "movq $0x1111, %%rbx\n\tmovq $0x2222, %%r12\n\tmovq $0x3333, %%r13\n\t"
        "movq $0x4444, %%r14\n\tmovq $0x5555, %%r15\n\t"
        "leaq %[msp], %%rdi\n\tmovq %[csp], %%rsi\n\txorl %%edx, %%edx\n\t"
        "call sp__asm_switch\n\t"
        "movq %%rbx, %[o0]\n\tmovq %%r12, %[o1]\n\tmovq %%r13, %[o2]\n\t"
        "movq %%r14, %[o3]\n\tmovq %%r15, %[o4]"
        : [msp] "=m"(main_sp), [o0] "=m"(out[0]), [o1] "=m"(out[1]),
          [o2] "=m"(out[2]), [o3] "=m"(out[3]), [o4] "=m"(out[4])
        : [csp] "m"(co_sp)
        : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "rbx",
          "r12", "r13", "r14", "r15", "memory", "cc", "xmm0", "xmm1", "xmm2",
          "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    assert_int_equal(out[0], 0x1111);
    assert_int_equal(out[1], 0x2222);
    assert_int_equal(out[2], 0x3333);
    assert_int_equal(out[3], 0x4444);
    assert_int_equal(out[4], 0x5555);
}

/* The same through the scheduler, with every backend (the matrix runs this
 * file under SPINDLE_CTX=ucontext/sjlj too): doubles kept in registers and
 * on the stack across yields. */
static void *float_worker(void *arg)
{
    double base = (double)PI(arg);
    volatile double acc = 0;
    double a = base * 1.5, b = base / 3.0, c = base + 0.25;
    for (int i = 0; i < 50; i++) {
        acc += a + b + c;
        sp_yield();
        a += 1.0;
        b += 1.0;
        c += 1.0;
    }
    double expect = 0;
    double ea = base * 1.5, eb = base / 3.0, ec = base + 0.25;
    for (int i = 0; i < 50; i++) {
        expect += ea + eb + ec;
        ea += 1.0;
        eb += 1.0;
        ec += 1.0;
    }
    return IP(acc == expect);
}

static void test_sse_values_survive_yield(void **state)
{
    sp_co *a = sp_spawn(float_worker, IP(7), NULL);
    sp_co *b = sp_spawn(float_worker, IP(1000), NULL);
    void *ra, *rb;
    assert_int_equal(sp_join(a, &ra), 0);
    assert_int_equal(sp_join(b, &rb), 0);
    assert_true(PI(ra));
    assert_true(PI(rb));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer_and_alignment),
        cmocka_unit_test(test_entry_return_goes_to_link),
        cmocka_unit_test(test_callee_saved_survive),
        cmocka_unit_test(test_sse_values_survive_yield),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
