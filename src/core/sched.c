/* The per-thread scheduler: the ready queue, the switch, the scheduler
 * context that runs when nobody else can (idle, star mode, shared stacks). */
#define _GNU_SOURCE
#include "core/switch.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if SP_VALGRIND
#include <valgrind/memcheck.h>
#endif

sp__tls sp_sched *sp__tls_sched;

static pthread_key_t sched_key;
static pthread_once_t sched_key_once = PTHREAD_ONCE_INIT;

/* ---- shared stacks ------------------------------------------------------
 * Copies move raw frames, which include ASan's redzones: they must not be
 * checked, and the copied-in range is unpoisoned (its shadow still describes
 * the previous owner's frames). */

#if SP_ASAN
__attribute__((no_sanitize_address))
#endif
static void copy_frames(char *dst, const char *src, size_t len)
{
    /* Both ends are 16-aligned and len a multiple of 16. */
    uint64_t *d = (uint64_t *)(void *)dst;
    const uint64_t *p = (const uint64_t *)(const void *)src;
    for (size_t i = 0; i < len / 8; i++)
        d[i] = p[i];
}

/* The part of the run stack a suspended coroutine's frames end at: below
 * the asm backend's constant top bytes, which need no copy. */
static inline char *shared_top(sp_sched *s)
{
    char *top = s->shared_stack.base + s->shared_stack.size;
    return s->cfg.ctx == SP_CTX_ASM ? top - SP__ASM_TOP_CONST : top;
}

static void shared_save(sp_sched *s, sp_co *co)
{
    char *top = shared_top(s);
    char *lo = (char *)SP__ALIGN_DOWN((uintptr_t)co->ctx.sp, 16);
    size_t len = (size_t)(top - lo);
    if (len > co->save_cap || len * 4 < co->save_cap) {
        if (co->save_buf)
            sp__mem_free(&s->mem, co->save_buf, co->save_cap);
        size_t cap;
        co->save_buf = sp__mem_alloc(&s->mem, len, &cap);
        if (!co->save_buf)
            sp__fatal("out of memory saving the stack of coroutine %llu",
                      (unsigned long long)co->id);
        co->save_cap = (uint32_t)cap;
    }
    copy_frames(co->save_buf, lo, len);
    co->save_len = (uint32_t)len;
}

static void shared_load(sp_sched *s, sp_co *co)
{
    char *top = shared_top(s);
    if (co->flags & SP__F_FRESH) {
        co->flags &= ~SP__F_FRESH;
        sp__co_make_context(s, co, s->shared_stack.base, s->shared_stack.size);
        return;
    }
#if SP_ASAN
    __asan_unpoison_memory_region(top - co->save_len, co->save_len);
#endif
#if SP_VALGRIND
    /* memcheck holds the run stack below its last stack pointer to be
     * unaddressable; these frames are about to live there again. */
    VALGRIND_MAKE_MEM_UNDEFINED(top - co->save_len, co->save_len);
#endif
    copy_frames(top - co->save_len, co->save_buf, co->save_len);
}

/* Runs on the scheduler context: puts `next`'s frames on the run stack. */
static void shared_swap(sp_sched *s, sp_co *next)
{
    sp_co *own = s->shared_owner;
    if (own == next)
        return;
    if (own && !(own->flags & SP__F_ENDED))
        shared_save(s, own);
    shared_load(s, next);
    s->shared_owner = next;
}

/* ---- the switch ---------------------------------------------------------- */

void sp__poll_now(sp_sched *s)
{
    s->since_poll = 0;
    if (__atomic_load_n(&s->inbox_n, __ATOMIC_RELAXED))
        sp__inbox_drain(s);
    if (s->timers.n)
        sp__timers_expire(s, sp_now());
    if (s->poll && s->poll_waiters)
        s->poll(s, 0);
    if (s->mn)
        sp__mn_poll(s);
}

sp_sched *sp__switch_to(sp_sched *s, sp_co *to)
{
    return sp__switch_to_inline(s, to);
}

sp_sched *sp__switch_next(sp_sched *s)
{
    return sp__switch_next_inline(s);
}

/* Everything sp_yield does besides a plain step of the round-robin: the
 * first use of the thread, M:N, star mode, a poll that is due. */
static sp__noinline void yield_slow(void)
{
    sp_sched *s = sp__sched();
    sp__maybe_poll(s);
    if (s->mn) {
        sp__mn_yield(s);
        return;
    }
    if (!s->rq_head)
        return;
    sp_co *cur = s->current;
    sp__set_state(cur, SP__CO_READY);
    if (s->cfg.switch_mode == SP_SWITCH_DIRECT) {
        sp_co *next = sp__rq_pop(s);
        sp__rq_push(s, cur);
        sp__switch_to_inline(s, next);
    } else {
        sp__rq_push(s, cur);
        sp__switch_to_inline(s, s->sched_co);
    }
}

/* `in` (in the run queue) leaves it and `out` (the current coroutine) goes
 * to the back, so the length does not change: the queue work of a yield
 * and of a yield_to, without the count's update that a pop and a push
 * would undo.  Two coroutines taking turns (`in` alone in the queue) take
 * one branch.  (Passing sp_yield's prev as the constant NULL made it
 * slower, 5.6 -> 6.2 ns in two builds of different layout: measure before
 * "simplifying" this.) */
static sp__always_inline void rq_trade(sp_sched *s, sp_co *in, sp_co *out)
{
    sp_co *prev = in->rq_prev, *next = in->rq_next;
    out->rq_next = NULL;
    if (!next) {
        /* `in` is the back: `out` takes its place. */
        out->rq_prev = prev;
        if (prev)
            prev->rq_next = out;
        else
            s->rq_head = out;
        s->rq_tail = out;
        return;
    }
    next->rq_prev = prev;
    if (prev)
        prev->rq_next = next;
    else
        s->rq_head = next;
    sp_co *tail = s->rq_tail;
    out->rq_prev = tail;
    tail->rq_next = out;
    s->rq_tail = out;
}

/* The common case inline, with the switch itself inline in it: the
 * next coroutine in line takes the CPU, the current one goes to the back
 * (the queue rotates by one; its length does not change). */
void sp_yield(void)
{
    sp_sched *s = sp__tls_sched;
    if (sp__unlikely(!s || !s->yield_inline)) {
        yield_slow();
        return;
    }
    /* sp__maybe_poll's test, with the poll itself out of line. */
    uint32_t n = s->since_poll + 1;
    if (sp__unlikely(n >= SP__POLL_EVERY && n >= s->rq_len)) {
        yield_slow();
        return;
    }
    s->since_poll = n;
    sp_co *next = s->rq_head;
    if (!next)
        return;
    sp_co *cur = s->current;
    sp__set_state(cur, SP__CO_READY);
    rq_trade(s, next, cur);
    sp__switch_to_inline(s, next);
}

int sp_yield_to(sp_co *co)
{
    sp_sched *s = sp__sched();
    if (!co || co == s->current || co->sched != s || co->state != SP__CO_READY || s->mn) {
        errno = EINVAL;
        return -1;
    }
    sp_co *cur = s->current;
    sp__set_state(cur, SP__CO_READY);
    rq_trade(s, co, cur);
    sp__switch_to_inline(s, co);
    return 0;
}

/* The asymmetric pair lives here, beside the inline switch, so an idle
 * coroutine parked in sp_suspend keeps one frame fewer on its stack (its
 * copy is what a shared-stack coroutine costs). */
int sp_resume(sp_co *co)
{
    sp_sched *s = sp__sched();
    if (!co || co == s->current || co->sched != s ||
        (co->state != SP__CO_READY && co->state != SP__CO_SUSPENDED) ||
        (s->mn && co->state != SP__CO_SUSPENDED)) {
        errno = EINVAL;
        return -1;
    }
    if (sp__set_resumed(s, co, 1) < 0) {
        errno = EBUSY;
        return -1;
    }
    if (co->state == SP__CO_READY)
        sp__rq_remove(s, co);
    sp__set_state(s->current, SP__CO_PARKED);
    s = sp__switch_to_inline(s, co);
    /* Back because co suspended (it cleared `waiter`) or ended. */
    return co->state == SP__CO_DONE ? 1 : 0;
}

int sp_suspend(void)
{
    sp_sched *s = sp__sched();
    sp_co *co = s->current;
    if (!co->resumed || !co->waiter) {
        errno = EINVAL;
        return -1;
    }
    sp_co *resumer = co->waiter;
    co->waiter = NULL;
    sp__set_resumed(s, co, 0);
    sp__set_state(co, SP__CO_SUSPENDED);
    sp__switch_to_inline(s, resumer);
    return 0;
}

/* ---- the scheduler context ---------------------------------------------- */

/* The frames an ended coroutine never returned from (its entry and end,
 * the chain under an sp_exit) keep their ASan redzones poisoned; frames
 * that returned cleaned up after themselves.  The ones left all lie above
 * the stack pointer it last switched away with: the next coroutine on this
 * stack, or uninstrumented code there (an interceptor's locals), must not
 * find them. */
static inline void unpoison_ended(sp_co *z, char *lo, char *top)
{
#if SP_ASAN
    char *sp = z->ctx.sp;
    if (sp >= lo && sp < top)
        lo = sp;
    __asan_unpoison_memory_region(lo, (size_t)(top - lo));
#endif
    (void)z; (void)lo; (void)top;
}

sp__noinline void sp__release_zombie(sp_sched *s, void *arg)
{
    sp_co *z = arg;
    if (z->kind == SP_STACK_SHARED) {
        if (s->shared_owner == z) {
            s->shared_owner = NULL;
            unpoison_ended(z, s->shared_stack.base,
                           s->shared_stack.base + s->shared_stack.size);
        }
        if (z->save_buf)
            sp__mem_free(&s->mem, z->save_buf, z->save_cap);
        z->save_buf = NULL;
        z->save_cap = z->save_len = 0;
    } else {
        sp__check_canary(z);
        unpoison_ended(z, z->stack.base, z->stack.base + z->stack.size);
        sp__stack_put(&s->stacks, &z->stack);
    }
    if (z->ctx.ext) {
        sp__mem_free(&s->mem, z->ctx.ext, sizeof(sp__ext_ctx));
        z->ctx.ext = NULL;
    }
#if SP_TSAN
    __tsan_destroy_fiber(z->tsan_fiber);
    z->tsan_fiber = NULL;
#endif
    if (s->mn)
        sp__mn_ended(s, z);
    else if (z->jflags & SP__J_DETACHED)
        sp__co_free_object(s, z);
}

void sp__post_unlock(sp_sched *s, void *lock)
{
    (void)s;
    sp__lock_release(lock);
}

/* Nothing is ready: wait for the next deadline, I/O, or a wake-up from
 * another thread; returns once something is ready. */
static void idle(sp_sched *s)
{
    while (!s->rq_head) {
        s->since_poll = 0;
        if (__atomic_load_n(&s->inbox_n, __ATOMIC_ACQUIRE)) {
            sp__inbox_drain(s);
            continue;
        }
        int64_t deadline = -1;
        sp_co *t = sp__theap_min(&s->timers);
        if (t) {
            if (t->deadline <= sp_now()) {
                sp__timers_expire(s, sp_now());
                continue;
            }
            deadline = t->deadline;
        }
        if (!sp__sched_wakeable(s))
            sp__fatal("deadlock: every coroutine of this thread is parked and "
                      "nothing can wake them");
        sp__sched_sleep(s, deadline);
        if (s->timers.n)
            sp__timers_expire(s, sp_now());
    }
}

void sp__sched_sleep(sp_sched *s, int64_t deadline)
{
    int via_poll = s->poll != NULL;
    __atomic_store_n(&s->in_poll, (uint32_t)via_poll, __ATOMIC_SEQ_CST);
    if (__atomic_exchange_n(&s->wake_word, 0, __ATOMIC_SEQ_CST))
        return; /* kicked since it last slept: look again first */
    if (via_poll) {
        int64_t timeout = -1;
        if (deadline >= 0) {
            timeout = deadline - sp_now();
            if (timeout < 0)
                timeout = 0;
        }
        int rc = s->poll(s, timeout);
        if (rc < 0 && rc != -EINTR)
            sp__fatal("poller failed: %s", strerror(-rc));
    } else {
        struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
        syscall(SYS_futex, &s->wake_word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0,
                deadline >= 0 ? &ts : NULL, NULL, FUTEX_BITSET_MATCH_ANY);
    }
}

static void sched_main(sp_sched *s)
{
    sp__fiber_after(NULL);
    if (s->post)
        sp__run_post(s);
    for (;;) {
        sp_co *next = s->pending;
        s->pending = NULL;
        if (!next)
            next = sp__likely(!s->mn) ? sp__rq_pop(s) : sp__mn_find(s);
        if (!next) {
            if (s->mn) /* the runtime is over: back to the worker thread */
                next = &s->root;
            else {
                idle(s);
                continue;
            }
        }
        s->since_poll++;
        if (next->kind == SP_STACK_SHARED)
            shared_swap(s, next);
        s = sp__raw_switch(s, s->sched_co, next);
    }
}

static void sched_entry_asm(void *t) { sched_main(t); }
static void sched_entry_ext(void) { sched_main(sp__tls_sched); }

/* ---- creation ------------------------------------------------------------- */

/* The thread ends.  Its free stacks go to the process-wide pool.  With no
 * coroutine left, the poller and the scheduler are released; the
 * allocator's chunks stay mapped, since handles of coroutines that ended
 * but were not joined may be held elsewhere. */
static void sched_destroy(void *arg)
{
    sp_sched *s = arg;
    sp__stack_pool_fini(&s->stacks);
    sp__overflow_thread_fini();
    sp__tls_sched = NULL;
    if (s->mn)
        return; /* other workers may still kick it: sp_run frees it (sp__sched_free) */
    if (s->live != 0)
        return; /* parked coroutines still point at it */
    sp__sched_free(s);
}

void sp__sched_free(sp_sched *s)
{
    if (s->poll_fini && !s->poll_fini(s))
        return;
    free(s->timers.a);
    free(s->inbox);
    free(s);
}

static void key_init(void) { pthread_key_create(&sched_key, sched_destroy); }

static int overflow_lookup(void *addr, uint64_t *id, const char **name, size_t *size)
{
    sp_sched *s = sp__tls_sched;
    if (!s)
        return 0;
    sp_co *co = s->current;
    char *lo;
    size_t sz;
    if (co->kind == SP_STACK_SHARED) {
        lo = s->shared_stack.base;
        sz = s->shared_stack.size;
    } else if (co->flags & SP__F_ROOT) {
        return 0;
    } else {
        lo = co->stack.base;
        sz = co->stack.size;
        if (!co->stack.guarded)
            return 0;
    }
    char *a = addr;
    /* The guard page, and anything just below it a big frame may reach. */
    if (a >= lo - sp__page_size() && a < lo) {
        *id = co->id;
        *name = co->name;
        *size = sz;
        return 1;
    }
    return 0;
}

static void thread_stack_bounds(sp_sched *s)
{
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &s->thread_stack_lo, &s->thread_stack_size);
        pthread_attr_destroy(&attr);
    }
}

void sp__co_make_context(sp_sched *s, sp_co *co, char *base, size_t size)
{
    int sched = (co->flags & SP__F_SCHED) != 0;
    extern void sp__co_entry_asm(void *);
    extern void sp__co_entry_ext(void);
    if (s->cfg.ctx == SP_CTX_ASM) {
        co->ctx.sp = sp__asm_make(base + size, sched ? sched_entry_asm : sp__co_entry_asm, NULL);
        return;
    }
    if (!co->ctx.ext) {
        size_t cap;
        co->ctx.ext = sp__mem_alloc(&s->mem, sizeof(sp__ext_ctx), &cap);
        if (!co->ctx.ext)
            sp__fatal("out of memory for a %s context", sp_ctx_name(s->cfg.ctx));
    }
    void (*entry)(void) = sched ? sched_entry_ext : sp__co_entry_ext;
    if (s->cfg.ctx == SP_CTX_UCONTEXT)
        sp__uctx_make(co->ctx.ext, base, size, entry);
    else
        sp__sjlj_make(co->ctx.ext, base, size, entry);
}

sp_sched *sp__sched_create(const sp_config *cfg)
{
    pthread_once(&sched_key_once, key_init);
    sp_sched *s = calloc(1, sizeof *s);
    if (!s)
        sp__fatal("out of memory creating a scheduler");
    if (cfg) {
        s->cfg = *cfg;
    } else if (sp_config_init(&s->cfg) != 0) {
        sp__fatal("bad SPINDLE_CTX, SPINDLE_STACK or SPINDLE_SWITCH in the environment");
    }
    if (s->cfg.stack == SP_STACK_DEFAULT)
        s->cfg.stack = SP_STACK_FIXED;
    s->sw = s->cfg.ctx != SP_CTX_ASM ? SP__SW_EXT
            : s->cfg.fpenv_shared    ? SP__SW_ASM_NOFP
                                     : SP__SW_ASM;
    s->yield_inline = s->cfg.ctx == SP_CTX_ASM && s->cfg.switch_mode == SP_SWITCH_DIRECT;
    s->next_id = 1;
    s->id_step = 1;
    thread_stack_bounds(s);

    sp_co *root = &s->root;
    root->sched = s;
    root->name = "main";
    root->state = SP__CO_RUNNING;
    root->flags = SP__F_ROOT;
    root->kind = SP_STACK_FIXED;
    s->current = root;
    if (s->cfg.ctx != SP_CTX_ASM) {
        size_t cap;
        root->ctx.ext = sp__mem_alloc(&s->mem, sizeof(sp__ext_ctx), &cap);
        if (!root->ctx.ext)
            sp__fatal("out of memory creating a scheduler");
        sp__uctx_init_running(root->ctx.ext);
    }
#if SP_TSAN
    root->tsan_fiber = __tsan_get_current_fiber();
#endif
    sp__tls_sched = s;
    pthread_setspecific(sched_key, s);
    if (sp__overflow_thread_init(overflow_lookup) != 0)
        sp__fatal("cannot set up the stack overflow handler");

    /* The scheduler context: a coroutine object that is never queued. */
    size_t cap;
    sp_co *sc = sp__mem_alloc(&s->mem, sizeof *sc, &cap);
    if (!sc)
        sp__fatal("out of memory creating a scheduler");
    memset(sc, 0, sizeof *sc);
    sc->sched = s;
    sc->name = "scheduler";
    sc->flags = SP__F_SCHED;
    sc->kind = SP_STACK_FIXED;
    if (sp__stack_alloc(&s->stacks, SP_STACK_FIXED, 0, 0, &sc->stack) != 0)
        sp__fatal("no memory for the scheduler's stack");
    if (!sc->stack.guarded)
        sc->flags |= SP__F_CANARY;
    sp__co_make_context(s, sc, sc->stack.base, sc->stack.size);
#if SP_TSAN
    sc->tsan_fiber = __tsan_create_fiber(0);
#endif
    s->sched_co = sc;
    return s;
}

int sp_thread_init(const sp_config *cfg)
{
    if (sp__tls_sched)
        return -EBUSY;
    sp_config c;
    if (!cfg) {
        int rc = sp_config_init(&c);
        if (rc)
            return rc;
        cfg = &c;
    }
    if (cfg->ctx > SP_CTX_SJLJ || cfg->switch_mode > SP_SWITCH_STAR ||
        cfg->stack > SP_STACK_SHARED)
        return -EINVAL;
    sp__sched_create(cfg);
    return 0;
}

/* The run stack is made on first use: threads that never spawn a
 * shared-stack coroutine never map one. */
int sp__shared_stack_ensure(sp_sched *s)
{
    if (s->shared_stack.base)
        return 0;
    return sp__stack_alloc(&s->stacks, SP_STACK_FIXED, SP_STACK_SHARED_SIZE, 1,
                           &s->shared_stack);
}
