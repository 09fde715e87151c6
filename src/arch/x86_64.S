/* spindle context switch, x86-64 System V.
 *
 * The ABI rules this file relies on (System V AMD64 psABI, section 3.2):
 *  - rbx, rbp, r12-r15 and rsp are callee-saved: a function must return them
 *    unchanged.  Every other general register, every vector register (xmm,
 *    ymm, zmm) and the flags are caller-saved: a caller that needs them across
 *    a call has already spilled them, so a switch that is an ordinary function
 *    call need not save them.
 *  - The control bits of MXCSR (rounding mode, exception masks, FTZ/DAZ) and
 *    the x87 control word are callee-saved; their status bits are not.  A
 *    coroutine that changes its rounding mode must not change another's, so
 *    both words travel with the context.  Loading them (ldmxcsr, fldcw) is
 *    the slow part of a switch (see the measurements below).
 *  - On entry to a function (just after `call` pushed the return address)
 *    rsp + 8 is a multiple of 16.  A fresh context starts in the trampoline
 *    with rsp a multiple of 16, so the `call` to the entry function gives it
 *    the aligned stack the ABI promises.
 *  - The 128-byte red zone below rsp belongs to the running function; a
 *    caller never leaves live data there across a call, so the switch, being
 *    called, may push over it.
 *  - The switch resumes a context with `ret`, like any function return, and
 *    not with `pop; jmp *reg` as Boost.Context does: the `call` into the
 *    switch pushed a return-stack-buffer entry, and only a `ret` pops it.
 *    With a jump every later return of the resumed coroutine is predicted
 *    one entry off and misses; measured here, sp_yield ping-pong went from
 *    17 ns to 7 ns a switch.  Coroutines that switch from the same code
 *    (the common case: the same yield or wait path) are then predicted
 *    perfectly.
 *
 * Saved frame, from the saved stack pointer upwards (64 bytes):
 *   [rsp+0]  MXCSR (4 bytes), x87 control word (2 bytes), 2 spare bytes
 *   [rsp+8]  r15, r14, r13, r12, rbx, rbp
 *   [rsp+56] address to resume at
 */

        .text

/* void *sp__asm_switch(void **save_sp, void *load_sp, void *transfer)
 *                      rdi              rsi            rdx
 * Measured on Zen 4 (bench `switch`, rows spindle/asm-raw and -nofp):
 * stmxcsr alone costs about 2 ns, whether or not its result is read; reading
 * it back to skip an equal ldmxcsr is slower still (its latency lands on the
 * critical path), so MXCSR is always reloaded and only fldcw, whose store is
 * cheap to read back, is skipped when the word is unchanged. */
        .globl  sp__asm_switch
        .hidden sp__asm_switch
        .type   sp__asm_switch, @function
        .p2align 4
sp__asm_switch:
        .cfi_startproc
        endbr64
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movzwl  4(%rsp), %ecx   /* outgoing x87 control word */
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
.Lresume:
        ldmxcsr (%rsp)
        cmpw    4(%rsp), %cx
        jne     .Lreload
.Lpop:
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        movq    %rdx, %rax
        ret
.Lreload:
        fldcw   4(%rsp)
        jmp     .Lpop
        .cfi_endproc
        .size   sp__asm_switch, .-sp__asm_switch

/* void *sp__asm_switch_nofp(void **save_sp, void *load_sp, void *transfer)
 * The same without the floating-point control words, for a scheduler whose
 * coroutines share one floating-point environment (sp_config.fpenv_shared):
 * the frame keeps its layout, the control-word slot is neither written nor
 * read.  Both variants must not be mixed on one thread. */
        .globl  sp__asm_switch_nofp
        .hidden sp__asm_switch_nofp
        .type   sp__asm_switch_nofp, @function
        .p2align 4
sp__asm_switch_nofp:
        .cfi_startproc
        endbr64
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        movq    %rdx, %rax
        ret
        .cfi_endproc
        .size   sp__asm_switch_nofp, .-sp__asm_switch_nofp

/* void *sp__asm_make(void *top, void (*entry)(void *), void **link)
 *                    rdi        rsi                    rdx
 * Lays out a saved frame that resumes in the trampoline with rbx = entry and
 * r12 = link.  Above the frame sit 16 bytes of zeros: a null return address
 * and a null saved rbp end every backtrace and frame-pointer walk. */
        .globl  sp__asm_make
        .hidden sp__asm_make
        .type   sp__asm_make, @function
        .p2align 4
sp__asm_make:
        .cfi_startproc
        endbr64
        andq    $-16, %rdi
        leaq    -80(%rdi), %rax         /* 64-byte frame + 16 bytes of zeros */
        movq    $0, 72(%rax)
        movq    $0, 64(%rax)
        leaq    sp__asm_trampoline(%rip), %rcx
        movq    %rcx, 56(%rax)          /* resume address */
        movq    $0, 48(%rax)            /* rbp: ends frame-pointer chains */
        movq    %rsi, 40(%rax)          /* rbx = entry */
        movq    %rdx, 32(%rax)          /* r12 = link */
        movq    $0, 24(%rax)            /* r13 */
        movq    $0, 16(%rax)            /* r14 */
        movq    $0, 8(%rax)             /* r15 */
        movq    $0, (%rax)
        stmxcsr (%rax)                  /* inherit the creator's FP control */
        fnstcw  4(%rax)
        ret
        .cfi_endproc
        .size   sp__asm_make, .-sp__asm_make

/* Entered by the first switch into a fresh context: rax = transfer,
 * rsp = top - 16 (a multiple of 16). */
        .type   sp__asm_trampoline, @function
        .p2align 4
sp__asm_trampoline:
        .cfi_startproc
        .cfi_undefined rip              /* outermost frame for unwinders */
        endbr64
        movq    %rax, %rdi
        callq   *%rbx
        /* The entry function returned: continue the link context, if any. */
        testq   %r12, %r12
        jz      1f
        movq    (%r12), %rsp
        xorl    %edx, %edx              /* transfer NULL */
        fnstcw  -8(%rsp)
        movzwl  -8(%rsp), %ecx
        jmp     .Lresume
1:      call    abort@PLT
        .cfi_endproc
        .size   sp__asm_trampoline, .-sp__asm_trampoline

        .section .note.GNU-stack,"",@progbits
