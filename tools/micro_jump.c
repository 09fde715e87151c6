/* The switch with nothing around it, for `spindle micro`'s spindle/jump
 * rows: two contexts pass the CPU back and forth with the inline assembly
 * switch (sp__asm_jump, src/arch/ctx.h) and no scheduler, the job
 * boost/fcontext's row measures.  It is the floor under every spindle
 * switch: sp_yield adds the run queue, the states and the poll count, and,
 * being a called function, gives its caller back the callee-saved
 * registers.  Built with -mno-red-zone, as every file that switches inline
 * is (tools/CMakeLists.txt). */
#define _GNU_SOURCE
#include "micro.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "arch/ctx.h"
#include "bench.h"

#define JUMP_STACK (64 * 1024)

typedef struct jump_pair {
    void *main_sp, *a_sp, *b_sp;
    long iters, b_turns;
} jump_pair;

/* fp is a constant in each copy, as sp__asm_jump wants. */
#define JUMP_BODIES(SUFFIX, FP)                                               \
    static void jump_b_##SUFFIX(void *arg)                                    \
    {                                                                         \
        jump_pair *p = arg;                                                   \
        for (;;) {                                                            \
            p->b_turns++;                                                     \
            sp__asm_jump(&p->b_sp, p->a_sp, p, FP);                           \
        }                                                                     \
    }                                                                         \
    static void jump_a_##SUFFIX(void *arg)                                    \
    {                                                                         \
        jump_pair *p = arg;                                                   \
        for (long i = 0; i < p->iters; i++)                                   \
            sp__asm_jump(&p->a_sp, p->b_sp, p, FP);                           \
        sp__asm_jump_end(&p->a_sp, p->main_sp, p, FP);                        \
    }
JUMP_BODIES(fp, 1)
JUMP_BODIES(nofp, 0)

double micro_jump(long iters, int fp)
{
    char *mem = mmap(NULL, 2 * JUMP_STACK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    jump_pair p = {.iters = iters};
    /* Entry functions never return here (link NULL: sp__asm_exit aborts). */
    p.a_sp = sp__asm_make(mem + JUMP_STACK, fp ? jump_a_fp : jump_a_nofp, NULL);
    p.b_sp = sp__asm_make(mem + 2 * JUMP_STACK, fp ? jump_b_fp : jump_b_nofp, NULL);
    double t0 = bench_now_ns();
    sp__asm_jump(&p.main_sp, p.a_sp, &p, 1);
    double t = bench_now_ns() - t0;
    munmap(mem, 2 * JUMP_STACK);
    /* b ran once for each of a's switches to it: 2 * iters switches. */
    if (p.b_turns != iters)
        return -1;
    return t / (2.0 * (double)iters);
}
