/* The switch between two coroutines of one thread, inline: sp_yield, the
 * park paths and a coroutine's end all inline it, so the assembly switch
 * (sp__asm_jump) lands in the function that switches and the compiler
 * saves only what is live there.  Included by sched.c and co.c only, which
 * are built with -mno-red-zone (src/core/CMakeLists.txt says why). */
#ifndef SP_CORE_SWITCH_H
#define SP_CORE_SWITCH_H

#include "core/internal.h"

#if !SP__NO_RED_ZONE
#error "switch.h switches inline: build this file with -mno-red-zone (src/core/CMakeLists.txt)"
#endif

#if SP_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if SP_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define sp__always_inline inline __attribute__((always_inline))

/* ---- sanitizer annotations ---------------------------------------------
 * Without them ASan sees a stack pointer jump into another stack and reports
 * false positives, and TSan mixes up the happens-before of two coroutines. */

static __attribute__((unused)) void sp__stack_bounds(sp_sched *s, sp_co *co, void **lo,
                                                     size_t *size)
{
    if (co->flags & SP__F_ROOT) {
        *lo = s->thread_stack_lo;
        *size = s->thread_stack_size;
    } else if (co->kind == SP_STACK_SHARED) {
        *lo = s->shared_stack.base;
        *size = s->shared_stack.size;
    } else {
        *lo = co->stack.base;
        *size = co->stack.size;
    }
}

static sp__always_inline void sp__fiber_before(sp_sched *s, sp_co *from, sp_co *to,
                                               void **fake)
{
#if SP_ASAN
    void *lo;
    size_t size;
    sp__stack_bounds(s, to, &lo, &size);
    /* A coroutine that has ended passes NULL: its fake stack dies with it. */
    __sanitizer_start_switch_fiber(from->flags & SP__F_ENDED ? NULL : fake, lo, size);
#endif
#if SP_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)s; (void)from; (void)to; (void)fake;
}

static sp__always_inline void sp__fiber_after(void *fake)
{
#if SP_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    (void)fake;
}

static sp__always_inline void sp__check_canary(sp_co *co)
{
    if (sp__unlikely(co->flags & SP__F_CANARY) && !sp__stack_canary_ok(&co->stack))
        sp__overflow_report(co->id, co->name, co->stack.size);
}

/* Switches from `from` (the current coroutine) to `to`, whose frames are
 * in place; returns when `from` runs again, with the scheduler it runs on
 * then (M:N: maybe another worker's), after that scheduler's post action. */
static sp__always_inline sp_sched *sp__raw_switch_ex(sp_sched *s, sp_co *from, sp_co *to,
                                                     int end)
{
    void *fake = NULL;
    sp_sched *r;
    sp__fiber_before(s, from, to, &fake);
    s->current = to;
    /* Under M:N it may have run on another worker before; sp_cancel reads
     * it from any worker. */
    __atomic_store_n(&to->sched, s, __ATOMIC_RELAXED);
    sp__set_state(to, SP__CO_RUNNING);
    if (sp__likely(s->sw == SP__SW_ASM)) {
        if (end)
            sp__asm_jump_end(&from->ctx.sp, to->ctx.sp, s, 1);
        r = sp__asm_jump(&from->ctx.sp, to->ctx.sp, s, 1);
    } else if (s->sw == SP__SW_ASM_NOFP) {
        if (end)
            sp__asm_jump_end(&from->ctx.sp, to->ctx.sp, s, 0);
        r = sp__asm_jump(&from->ctx.sp, to->ctx.sp, s, 0);
    } else {
        if (s->cfg.ctx == SP_CTX_UCONTEXT)
            sp__uctx_switch(&from->ctx, &to->ctx);
        else
            sp__sjlj_switch(&from->ctx, &to->ctx);
        r = sp__tls_sched;
    }
    sp__fiber_after(fake);
    if (sp__unlikely(r->post != NULL))
        sp__run_post(r);
    return r;
}

static sp__always_inline sp_sched *sp__raw_switch(sp_sched *s, sp_co *from, sp_co *to)
{
    return sp__raw_switch_ex(s, from, to, 0);
}

/* end: the current coroutine has ended and never runs again (its last
 * switch saves nothing). */
static sp__always_inline sp_sched *sp__switch_to_ex(sp_sched *s, sp_co *to, int end)
{
    sp_co *from = s->current;
    if (sp__unlikely(to == from)) {
        /* A coroutine that parked and was readied again before it left (a
         * poll between its park and the switch ended its wait) is next in
         * line: it simply carries on.  A real switch would resume it from
         * its previous save, since to->ctx.sp is read before it is saved. */
        sp__set_state(from, SP__CO_RUNNING);
        if (s->post)
            sp__run_post(s);
        return s;
    }
    sp__check_canary(from);
    if (sp__unlikely(to->kind == SP_STACK_SHARED && s->shared_owner != to)) {
        /* The run stack can only be rewritten from another stack. */
        s->pending = to;
        to = s->sched_co;
    }
    return sp__raw_switch_ex(s, from, to, end);
}

static sp__always_inline sp_sched *sp__switch_to_inline(sp_sched *s, sp_co *to)
{
    return sp__switch_to_ex(s, to, 0);
}

/* Looks at I/O and timers between switches (sp__poll_now) so busy
 * coroutines do not starve them. */
static sp__always_inline void sp__maybe_poll(sp_sched *s)
{
    if (sp__unlikely(++s->since_poll >= SP__POLL_EVERY) && s->since_poll >= s->rq_len)
        sp__poll_now(s);
}

/* sp__switch_next, inline (internal.h has the contract); end as for
 * sp__switch_to_ex. */
static sp__always_inline sp_sched *sp__switch_next_ex(sp_sched *s, int end)
{
    sp_co *next = NULL;
    /* Not while a post action is pending: the coroutine leaving may hold
     * the lock of what it waits on until it is off its stack, and a poll
     * can expire timers and drain the inbox, whose unlinks take such
     * locks (two workers would take two of them in opposite orders).  The
     * count goes on; the next switch without one polls. */
    if (sp__likely(!s->post))
        sp__maybe_poll(s);
    if (sp__likely(s->cfg.switch_mode == SP_SWITCH_DIRECT))
        next = sp__likely(!s->mn) ? sp__rq_pop(s) : sp__mn_next(s);
    if (!next)
        next = s->sched_co;
    return sp__switch_to_ex(s, next, end);
}

static sp__always_inline sp_sched *sp__switch_next_inline(sp_sched *s)
{
    return sp__switch_next_ex(s, 0);
}

#endif
