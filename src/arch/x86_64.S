/* spindle context switch, x86-64 System V: the pieces that are not inline.
 *
 * The switch itself is inline assembly, sp__asm_jump in ctx.h, and a fresh
 * context is laid out in C, sp__asm_make; this file holds what must be
 * assembly: the stub a fresh context's entry returns to.  The ABI rules both rely on (System V
 * AMD64 psABI, section 3.2):
 *  - rbx, rbp, r12-r15 and rsp are callee-saved; every other general
 *    register, every vector register and the flags are caller-saved.  The
 *    switch is not a call: its clobber list names every register but rsp,
 *    rbp and the three that carry its operands, so the compiler keeps
 *    nothing in a register across it and saves, in the function around it,
 *    only what is live there (or what that function's own caller expects
 *    back, which its prologue saves on the path that switches).  rbp cannot
 *    be a clobber while frame pointers are on, so the frame holds it.
 *  - The x87 register stack is empty at a call, but inline assembly is not a
 *    call: st(0)-st(7) and mm0-mm7 are clobbers too, so a long double the
 *    compiler keeps in a register is spilled around the switch.
 *  - The control bits of MXCSR (rounding mode, exception masks, FTZ/DAZ) and
 *    the x87 control word are callee-saved; their status bits are not.  A
 *    coroutine that changes its rounding mode must not change another's, so
 *    the control bits travel with the context (unless
 *    sp_config.fpenv_shared); the status bits stay the thread's, and a word
 *    whose control part is unchanged is not reloaded (ctx.h says why).
 *  - On entry to a function (just after `call` pushed the return address)
 *    rsp + 8 is a multiple of 16.  A fresh context is entered by a jump to
 *    its entry function with rsp pointing at a return address (the stub
 *    sp__asm_exit) and rsp + 8 a multiple of 16, exactly as after a call.
 *  - The 128-byte red zone below rsp belongs to the running function.  The
 *    switch pushes its frame there, so the functions that switch inline are
 *    built with -mno-red-zone (src/core/CMakeLists.txt, src/arch).
 *  - Return-stack predictor: the switch resumes a context with an indirect
 *    `jmp` to the label after its own switch, and there is no call/ret pair
 *    around it, so the predictor's stack is not disturbed: every `ret` the
 *    resumed code later executes matches the `call` it made.  (A switch that
 *    is a called function and resumes with `pop; jmp` leaves one predictor
 *    entry unpopped per switch, and every later return mispredicts; the
 *    previous version, a called function, resumed with `ret` for that
 *    reason.)  The indirect jump is predicted from its own history: the same
 *    yield or wait path resumes the same label, the common case.
 *  - Indirect branch tracking (CET IBT) is not enforced for user space on
 *    Linux, and the entry functions start with endbr64 anyway.  A shadow
 *    stack (CET SHSTK) would reject the stub's fake return address and the
 *    switch's stack change: spindle does not support one.
 *
 * Frame of a suspended context, from its saved stack pointer up (24 bytes):
 *   [sp+0]   MXCSR (4 bytes), x87 control word (2 bytes), 2 spare bytes
 *   [sp+8]   rbp
 *   [sp+16]  the address to resume at
 *
 * A fresh context (sp__asm_make), top = the stack's end rounded down to 16:
 *   [top-48] the frame: creator's MXCSR/x87 CW, rbp 0, resume at entry
 *   [top-24] return address of entry: sp__asm_exit
 *   [top-16] link (void **, may be NULL)
 *   [top-8]  0
 */

        .text

/* Reached by the `ret` of an entry function that returned: rsp = top - 16,
 * where the link is.  Resumes the link context with transfer (rdi) NULL.
 * Never called, so it is the outermost frame for unwinders. */
        .globl  sp__asm_exit
        .hidden sp__asm_exit
        .type   sp__asm_exit, @function
        .p2align 4
sp__asm_exit:
        .cfi_startproc
        .cfi_undefined rip
        movq    (%rsp), %rcx
        testq   %rcx, %rcx
        jz      1f
        /* The FP words as sp__asm_jump_end restores them (ctx.h): only a
         * changed control part is reloaded, the running flags kept.  The
         * ended stack below rsp is free to write. */
        stmxcsr -8(%rsp)
        fnstcw  -16(%rsp)
        movl    -8(%rsp), %edx
        movzwl  -16(%rsp), %r8d
        movq    (%rcx), %rsp
        xorl    %edi, %edi
        xorl    (%rsp), %edx
        testl   $0xffc0, %edx
        jz      2f
        andl    $0x3f, %edx
        xorl    %edx, (%rsp)
        ldmxcsr (%rsp)
2:      cmpw    4(%rsp), %r8w
        je      3f
        fldcw   4(%rsp)
3:      movq    8(%rsp), %rbp
        movq    16(%rsp), %rax
        addq    $24, %rsp
        jmp     *%rax
1:      call    abort@PLT
        .cfi_endproc
        .size   sp__asm_exit, .-sp__asm_exit

        .section .note.GNU-stack,"",@progbits
