/* The context-switch backends (layer "arch").  Three ways to move the CPU
 * from one stack to another, with one shape:
 *
 *   asm      (ctx.h)      inline assembly in the caller: rbp, MXCSR/x87
 *                         control words and a resume address on the stack,
 *                         the compiler spills what else is live (x86_64.S:
 *                         the ABI it relies on, and the entry's exit stub)
 *   ucontext (ucontext.c) glibc swapcontext: also saves the signal mask (a
 *                         system call each switch), kept for comparison
 *   sjlj     (sjlj.c)     _setjmp/_longjmp, the stack entered once through
 *                         makecontext/setcontext
 *
 * The core keeps one sp__ctx per coroutine; `sp` is the saved stack pointer
 * (asm), or, for the other two, the lowest stack address the suspended
 * context still needs (the shared-stack copier saves [sp, top)). */
#ifndef SP_ARCH_CTX_H
#define SP_ARCH_CTX_H

#include <fenv.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <ucontext.h>

/* ucontext/sjlj state, kept outside the stack in a pooled block. */
typedef struct sp__ext_ctx {
    ucontext_t uc;      /* ucontext: the context; sjlj: the one-time entry */
    jmp_buf jb;         /* sjlj */
    fenv_t fenv;        /* sjlj: _longjmp leaves MXCSR and the x87 CW alone */
    int fresh;          /* sjlj: not entered yet */
} sp__ext_ctx;

typedef struct sp__ctx {
    void *sp;
    sp__ext_ctx *ext;
} sp__ctx;

/* --- asm: see x86_64.S for the ABI it relies on --- */

/* The switch is inline assembly in its caller, not a call: the compiler
 * keeps live across it only what the clobber list lets it, so the caller
 * saves exactly the registers it still needs (often none beyond what its
 * own prologue saves anyway), and no call/return pair is left unbalanced on
 * the return-stack predictor.  A suspended context's saved stack pointer
 * points at a 24-byte frame:
 *   [sp+0]   MXCSR (4 bytes), x87 control word (2 bytes), 2 spare bytes
 *   [sp+8]   rbp (the frame pointer cannot be a clobber)
 *   [sp+16]  the address to resume at (a label just after the switch)
 * The frame is pushed below the caller's stack pointer: a function that
 * switches inline must not keep data in its red zone (the files that use
 * this are built with -mno-red-zone and SP__NO_RED_ZONE, without which
 * sp__asm_jump is not defined; see src/core/CMakeLists.txt). */
#define SP__ASM_CLOBBERS                                                          \
    "rax", "rbx", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",    \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",     \
    "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)", \
    "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)", "mm0", "mm1", "mm2",  \
    "mm3", "mm4", "mm5", "mm6", "mm7", "cc", "memory"

/* Saves the caller's context (frame above) on its stack, stores that stack
 * pointer in *save_sp, and resumes the context whose saved stack pointer is
 * load_sp; that context's own sp__asm_jump returns `transfer` (a fresh
 * context gets it as its entry's argument).  fp (a constant): save and
 * restore the control bits of MXCSR and the x87 control word; 0 leaves
 * them alone and their slot unwritten (sp_config.fpenv_shared), and one
 * thread must not mix the two.  MXCSR's status bits (the sticky exception
 * flags, caller-saved in the ABI) stay the thread's: a reload that changes
 * the register's value costs tens of nanoseconds (about 33 ns on an Intel
 * Xeon of 2024), so a switch between a coroutine that raised a flag and
 * one that has not would pay it twice a round trip if the flags travelled
 * with the context.  Each word is reloaded only when its control part
 * differs from the running one's, with the running flags kept. */
#if SP__NO_RED_ZONE /* set by CMake beside -mno-red-zone */
/* The switch's pieces, shared by sp__asm_jump and sp__asm_jump_end.
 * SAVE_FRAME pushes the frame above (the caller then writes the FP words
 * into it when fp).  LOAD stores the leaving stack pointer through rsi and
 * resumes the frame at rdx: rbp, then a jump to its saved address; LOAD_FP
 * first restores the FP words that differ: the caller has put the running
 * MXCSR in ecx and x87 word in r8w.  A reloaded MXCSR takes the running
 * status bits: saved ^ ((saved ^ running) & 0x3f), written into the frame
 * being popped.  The resume label is 16-byte aligned (the padding before
 * it follows the jump out and never runs): it is only ever reached by the
 * indirect jump, and unaligned it left sp_yield_to 20% slower in one build
 * and not in another. */
#define SP__ASM_SAVE_FRAME                                                    \
    "leaq   1f(%%rip), %%rax\n\t"                                             \
    "pushq  %%rax\n\t"                                                        \
    "pushq  %%rbp\n\t"                                                        \
    "subq   $8, %%rsp\n\t"
#define SP__ASM_RESUME                                                        \
    "movq   8(%%rsp), %%rbp\n\t"                                              \
    "movq   16(%%rsp), %%rax\n\t"                                             \
    "addq   $24, %%rsp\n\t"                                                   \
    "jmp    *%%rax\n"
#define SP__ASM_LOAD                                                          \
    "movq   %%rsp, (%%rsi)\n\t"                                               \
    "movq   %%rdx, %%rsp\n\t" SP__ASM_RESUME
#define SP__ASM_LOAD_FP                                                       \
    "movq   %%rsp, (%%rsi)\n\t"                                               \
    "movq   %%rdx, %%rsp\n\t"                                                 \
    "xorl   (%%rsp), %%ecx\n\t"                                               \
    "testl  $0xffc0, %%ecx\n\t"                                               \
    "jz     3f\n\t"                                                           \
    "andl   $0x3f, %%ecx\n\t"                                                 \
    "xorl   %%ecx, (%%rsp)\n\t"                                               \
    "ldmxcsr (%%rsp)\n"                                                       \
    "3:\n\t"                                                                  \
    "cmpw   4(%%rsp), %%r8w\n\t"                                              \
    "je     2f\n\t"                                                           \
    "fldcw  4(%%rsp)\n"                                                       \
    "2:\n\t" SP__ASM_RESUME

static inline __attribute__((always_inline)) void *
sp__asm_jump(void **save_sp, void *load_sp, void *transfer, int fp)
{
    register void *t __asm__("rdi") = transfer;
    register void **save __asm__("rsi") = save_sp;
    register void *load __asm__("rdx") = load_sp;
    if (fp)
        __asm__ volatile(SP__ASM_SAVE_FRAME
                         "stmxcsr (%%rsp)\n\t"
                         "fnstcw 4(%%rsp)\n\t"
                         "movl   (%%rsp), %%ecx\n\t"
                         "movzwl 4(%%rsp), %%r8d\n\t" SP__ASM_LOAD_FP
                         ".p2align 4\n1:"
                         : "+r"(t), "+r"(save), "+r"(load)
                         :
                         : SP__ASM_CLOBBERS);
    else
        __asm__ volatile(SP__ASM_SAVE_FRAME SP__ASM_LOAD
                         ".p2align 4\n1:"
                         : "+r"(t), "+r"(save), "+r"(load)
                         :
                         : SP__ASM_CLOBBERS);
    return t;
}

/* The last switch of a context that will never run again (a coroutine that
 * ended): nothing of it is saved but its stack pointer, stored in *save_sp
 * for whoever releases its stack; no frame, no stmxcsr.  The context at
 * load_sp resumes as from sp__asm_jump, with `transfer`. */
static inline __attribute__((always_inline, noreturn)) void
sp__asm_jump_end(void **save_sp, void *load_sp, void *transfer, int fp)
{
    register void *t __asm__("rdi") = transfer;
    register void **save __asm__("rsi") = save_sp;
    register void *load __asm__("rdx") = load_sp;
    if (fp)
        /* The control word is read through the leaving stack's red zone,
         * which a signal frame never overwrites. */
        __asm__ volatile("stmxcsr -16(%%rsp)\n\t"
                         "fnstcw -8(%%rsp)\n\t"
                         "movl   -16(%%rsp), %%ecx\n\t"
                         "movzwl -8(%%rsp), %%r8d\n\t" SP__ASM_LOAD_FP
                         :
                         : "r"(t), "r"(save), "r"(load)
                         : "rax", "rcx", "r8", "memory");
    else
        __asm__ volatile(SP__ASM_LOAD
                         :
                         : "r"(t), "r"(save), "r"(load)
                         : "rax", "memory");
    __builtin_unreachable();
}
#endif

/* sp__asm_jump as an ordinary function, for callers outside the core (the
 * tests): it returns with the callee-saved registers intact, as the ABI
 * wants, because its own prologue saves what the jump clobbers. */
void *sp__asm_switch(void **save_sp, void *load_sp, void *transfer);

/* The return address of a fresh context's entry (x86_64.S): resumes the
 * link context, or aborts.  Never called. */
__attribute__((visibility("hidden"))) void sp__asm_exit(void);

/* Builds a fresh context on the stack that ends at `top` (exclusive) and
 * returns its stack pointer, for sp__asm_jump.  The first switch into it
 * jumps to entry(transfer) on a 16-byte aligned stack (rsp + 8 a multiple
 * of 16, as after a call), with the creator's MXCSR and x87 control words
 * and rbp zero.  Its return address is sp__asm_exit: if entry returns, it
 * resumes the context whose saved stack pointer is in *link (with transfer
 * NULL), or with link NULL calls abort().  Inline, as part of a spawn.
 * Layout, top rounded down to 16:
 *   [top-48] the switch frame: MXCSR/x87 CW, rbp 0, resume at entry
 *   [top-24] entry's return address: sp__asm_exit
 *   [top-16] link
 *   [top-8]  0
 * Not checked by ASan: a pooled stack's shadow may still hold the
 * redzones of the frames its previous coroutine never returned from. */
#if SP_ASAN
__attribute__((no_sanitize_address))
#endif
static inline void *sp__asm_make(void *top, void (*entry)(void *transfer), void **link)
{
    void **f = (void **)((uintptr_t)top & ~(uintptr_t)15) - 6;
    unsigned mxcsr;
    unsigned short cw;
    __asm__("stmxcsr %0" : "=m"(mxcsr));
    __asm__("fnstcw %0" : "=m"(cw));
    f[0] = (void *)((uintptr_t)mxcsr | (uintptr_t)cw << 32);
    f[1] = NULL;
    f[2] = (void *)entry;
    f[3] = (void *)sp__asm_exit;
    f[4] = (void *)link;
    f[5] = NULL;
    return f;
}
/* The bytes at the top of a stack that sp__asm_make writes and nothing
 * writes again (the link and a zero word): a shared-stack copy may leave
 * them out.  A multiple of 16, as the copier wants. */
#define SP__ASM_TOP_CONST 16

/* --- ucontext and sjlj --- */

/* Prepares ext to start entry() on [base, base+size) at its first switch. */
void sp__uctx_make(sp__ext_ctx *ext, void *base, size_t size, void (*entry)(void));
/* Registers ext as the context of code already running (a root). */
void sp__uctx_init_running(sp__ext_ctx *ext);
void sp__uctx_switch(sp__ctx *from, sp__ctx *to);

void sp__sjlj_make(sp__ext_ctx *ext, void *base, size_t size, void (*entry)(void));
void sp__sjlj_init_running(sp__ext_ctx *ext);
void sp__sjlj_switch(sp__ctx *from, sp__ctx *to);

/* Returns an address inside a frame below the caller's: every byte the
 * caller's frame needs lies at or above it. */
char *sp__stack_probe(void);

#endif
