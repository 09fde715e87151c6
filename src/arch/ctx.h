/* The context-switch backends (layer "arch").  Three ways to move the CPU
 * from one stack to another, with one shape:
 *
 *   asm      (x86_64.S)   callee-saved registers + MXCSR/x87 control words
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

/* Saves the caller's callee-saved state on its stack, stores that stack
 * pointer in *save_sp, switches to the context whose saved stack pointer is
 * load_sp and returns `transfer` there (as the return value of that context's
 * own sp__asm_switch, or as the argument of a fresh context's entry). */
void *sp__asm_switch(void **save_sp, void *load_sp, void *transfer);
/* The same, leaving MXCSR and the x87 control word alone. */
void *sp__asm_switch_nofp(void **save_sp, void *load_sp, void *transfer);

/* Builds a fresh context on the stack that ends at `top` (exclusive) and
 * returns its stack pointer, for sp__asm_switch.  The first switch into it
 * calls entry(transfer) on a 16-byte aligned stack, with the creator's
 * MXCSR and x87 control words.  If entry returns, the context switches to
 * the one whose saved stack pointer is in *link (with transfer NULL); with
 * link NULL it calls abort(). */
void *sp__asm_make(void *top, void (*entry)(void *transfer), void **link);
/* The bytes at the top of a stack that sp__asm_make zeroes and nothing
 * writes again (a null return address and frame pointer): a shared-stack
 * copy may leave them out. */
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
