/* setjmp/longjmp backend.  A fresh stack is entered once through
 * makecontext/setcontext (the only portable way onto a new stack); every
 * later switch is _setjmp to save and _longjmp to resume.  The underscore
 * variants skip the signal mask, so a switch costs no system call.
 *
 * Longjmp-ing into a frame that is still live (suspended in this function,
 * never returned from) is what makes this a coroutine switch; that is
 * outside ISO C's guarantees but is what every sjlj coroutine library relies
 * on, and glibc supports it as long as no pointer-mangling check trips
 * (glibc's longjmp_chk is only used with _FORTIFY_SOURCE on longjmp, not
 * _longjmp). */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE
#include "arch/ctx.h"
#include "common.h"

#include <string.h>

void sp__sjlj_make(sp__ext_ctx *ext, void *base, size_t size, void (*entry)(void))
{
    sp__uctx_make(ext, base, size, entry);
}

void sp__sjlj_init_running(sp__ext_ctx *ext)
{
    memset(ext, 0, sizeof *ext);
}

sp__noinline void sp__sjlj_switch(sp__ctx *from, sp__ctx *to)
{
    from->sp = sp__stack_probe();
    /* The floating-point control words are callee-saved (see x86_64.S) and
     * _longjmp does not carry them: the backend saves them itself. */
    fegetenv(&from->ext->fenv);
    if (_setjmp(from->ext->jb) == 0) {
        sp__ext_ctx *t = to->ext;
        if (t->fresh) {
            t->fresh = 0;
            setcontext(&t->uc);
            sp__fatal("setcontext failed");
        }
        _longjmp(t->jb, 1);
    }
    fesetenv(&from->ext->fenv);
}
