/* glibc ucontext backend: makecontext/swapcontext.  swapcontext saves and
 * restores the signal mask with rt_sigprocmask on every switch, which is why
 * it is two orders of magnitude slower than the asm backend; it is kept to
 * measure exactly that, and as the portable fallback. */
#define _GNU_SOURCE
#include "arch/ctx.h"
#include "common.h"

#include <string.h>

sp__noinline char *sp__stack_probe(void)
{
    volatile char here = 0;
    return (char *)SP__ALIGN_DOWN((uintptr_t)&here, 16);
}

void sp__uctx_make(sp__ext_ctx *ext, void *base, size_t size, void (*entry)(void))
{
    memset(ext, 0, sizeof *ext);
    if (getcontext(&ext->uc) != 0)
        sp__fatal("getcontext failed");
    ext->uc.uc_stack.ss_sp = base;
    ext->uc.uc_stack.ss_size = size;
    ext->uc.uc_link = NULL; /* the core's entry never returns */
    makecontext(&ext->uc, entry, 0);
    ext->fresh = 1;
}

void sp__uctx_init_running(sp__ext_ctx *ext)
{
    memset(ext, 0, sizeof *ext);
}

void sp__uctx_switch(sp__ctx *from, sp__ctx *to)
{
    from->sp = sp__stack_probe();
    if (swapcontext(&from->ext->uc, &to->ext->uc) != 0)
        sp__fatal("swapcontext failed");
}
