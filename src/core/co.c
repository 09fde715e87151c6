/* Coroutine lifecycle: spawn, the entry and the end, join, detach, the
 * asymmetric resume/suspend pair, and sp_run. */
#define _GNU_SOURCE
#include "core/switch.h"

#include <errno.h>
#include <string.h>

/* The end of a coroutine on a thread without M:N, inline where it ends:
 * its result is in co->val.  Its stack is released by the next context to
 * run (the post action), once nothing runs on it, and its last switch saves
 * nothing of it (sp__asm_jump_end). */
static sp__always_inline __attribute__((noreturn)) void co_end(sp_sched *s, sp_co *co)
{
    co->flags |= SP__F_ENDED;
    sp__set_post(s, sp__release_zombie, co);
    sp__set_state(co, SP__CO_DONE);
    s->live--;
    if (s->live == 0 && s->wait_all) {
        sp__ready(s, s->wait_all);
        s->wait_all = NULL;
    }
    sp_co *w = co->waiter;
    if (w && co->resumed) {
        /* The resumer waits for exactly this: hand it the CPU. */
        co->waiter = NULL;
        co->resumed = 0;
        sp__switch_to_ex(s, w, 1);
    } else if (w && !s->rq_head && s->cfg.switch_mode == SP_SWITCH_DIRECT) {
        /* The joiner, and nobody else is ready: it would be queued and
         * popped at once (no poll while the post action is pending), so
         * it gets the CPU straight away. */
        if (w->heap_idx)
            sp__theap_remove(&s->timers, w);
        w->wait_err = 0;
        w->wait_unlink = NULL;
        sp__switch_to_ex(s, w, 1);
    } else {
        if (w)
            sp__wake_claimed_inline(s, w, 0); /* the joiner */
        sp__switch_next_ex(s, 1);
    }
    sp__fatal("a coroutine that ended was resumed");
}

static sp__always_inline void co_main(sp_sched *s)
{
#if SP_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    if (s->post) /* e.g. a coroutine that ended switched straight into this one */
        sp__run_post(s);
    sp_co *co = s->current;
    void *r = co->fn(co->val);
    /* Under M:N it may end on another worker than it started on. */
    s = sp__tls_sched;
    if (sp__likely(!s->mn)) {
        co->val = r;
        co_end(s, co);
    }
    sp__co_finish(s, r);
}

void sp__co_entry_asm(void *transfer) { co_main(transfer); }
void sp__co_entry_ext(void) { co_main(sp__tls_sched); }

static sp__always_inline void co_free_object(sp_sched *s, sp_co *co)
{
    sp__set_state(co, 0); /* a stale handle now fails the state checks */
    if (sp__unlikely(co->flags & SP__F_HEAP))
        free(co);
    else
        sp__mem_free_small(&s->mem, co, sizeof *co);
}

void sp__co_free_object(sp_sched *s, sp_co *co)
{
    co_free_object(s, co);
}

static sp__always_inline int co_birth(sp_sched *s, sp_co *co, size_t size)
{
    if (sp__unlikely(co->kind == SP_STACK_SHARED)) {
        int rc = sp__shared_stack_ensure(s);
        if (rc < 0)
            return rc;
        co->flags |= SP__F_FRESH; /* its context is made on the run stack */
    } else {
        int rc = sp__stack_get(&s->stacks, co->kind, size, &co->stack);
        if (rc < 0)
            return rc;
        if (!co->stack.guarded)
            co->flags |= SP__F_CANARY;
        if (sp__likely(s->sw != SP__SW_EXT))
            co->ctx.sp = sp__asm_make(co->stack.base + co->stack.size, sp__co_entry_asm, NULL);
        else
            sp__co_make_context(s, co, co->stack.base, co->stack.size);
    }
#if SP_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    return 0;
}

int sp__co_birth(sp_sched *s, sp_co *co, size_t size)
{
    return co_birth(s, co, size);
}

/* memset, spelled so that the compiler emits a few 16-byte stores: for an
 * object this small it would otherwise pick `rep stos`, whose start-up
 * alone costs more than the stores (the object is 8-aligned, not 16). */
static sp__always_inline void co_zero(sp_co *co)
{
    typedef uint64_t v2 __attribute__((vector_size(16), aligned(8), may_alias));
    const v2 z = {0, 0};
    char *p = (char *)co;
    size_t i = 0;
#pragma GCC unroll 16
    for (; i + 16 <= sizeof *co; i += 16)
        *(v2 *)(void *)(p + i) = z;
    if (sizeof *co - i >= 8)
        *(uint64_t *)(void *)(p + i) = 0;
}

static sp__always_inline int co_init(sp_co *co, int default_kind, sp_co_fn fn, void *arg,
                                     const sp_co_attr *attr)
{
    int kind = attr->stack ? (int)attr->stack : default_kind;
    if (!fn || kind > SP_STACK_SHARED)
        return -EINVAL;
    co_zero(co);
    co->fn = fn;
    co->val = arg;
    co->name = attr->name ? attr->name : "";
    co->kind = (uint8_t)kind;
    if (attr->pinned || kind == SP_STACK_SHARED)
        co->flags |= SP__F_PINNED; /* shared: its frames are on one thread's run stack */
    if (attr->detached)
        co->jflags |= SP__J_DETACHED;
    return 0;
}

int sp__co_init(sp_co *co, int default_kind, sp_co_fn fn, void *arg, const sp_co_attr *attr)
{
    return co_init(co, default_kind, fn, arg, attr);
}

static sp__always_inline sp_co *co_new(sp_sched *s, sp_co_fn fn, void *arg,
                                       const sp_co_attr *attr)
{
    static const sp_co_attr none;
    if (!attr)
        attr = &none;
    if (!fn || (attr->stack ? (int)attr->stack : (int)s->cfg.stack) > SP_STACK_SHARED) {
        errno = EINVAL;
        return NULL;
    }
    sp_co *co = sp__mem_alloc_small(&s->mem, sizeof *co);
    if (!co)
        return NULL;
    co_init(co, (int)s->cfg.stack, fn, arg, attr);
    co->sched = s;
    co->id = s->next_id;
    int rc = co_birth(s, co, attr->stack_size ? attr->stack_size : s->cfg.stack_size);
    if (rc < 0) {
        sp__mem_free_small(&s->mem, co, sizeof *co);
        errno = -rc;
        return NULL;
    }
    s->next_id += s->id_step;
    return co;
}

sp_co *sp__co_new(sp_sched *s, sp_co_fn fn, void *arg, const sp_co_attr *attr)
{
    return co_new(s, fn, arg, attr);
}

sp_co *sp_spawn(sp_co_fn fn, void *arg, const sp_co_attr *attr)
{
    sp_sched *s = sp__sched();
    sp_co *co = co_new(s, fn, arg, attr);
    if (!co)
        return NULL;
    if (attr && attr->suspended) {
        /* Only sp_resume on this thread starts it: it stays here. */
        co->flags |= SP__F_PINNED;
        sp__set_state(co, SP__CO_SUSPENDED);
    }
    if (sp__likely(!s->mn)) {
        s->live++;
        if (co->state != SP__CO_SUSPENDED)
            sp__ready(s, co);
        return co;
    }
    sp__mn_spawned(s, co);
    return co;
}

void sp__co_finish(sp_sched *s, void *result)
{
    sp_co *co = s->current;
    if (co->flags & SP__F_ROOT)
        sp__fatal("sp_exit called from the root coroutine of a thread");
    co->val = result;
    if (s->mn) {
        co->flags |= SP__F_ENDED;
        sp__set_post(s, sp__release_zombie, co);
        /* Its end is published once it is off its stack (sp__mn_ended):
         * a joiner on another worker frees it as soon as it sees it.  A
         * resumed coroutine has no joiner (EBUSY): `waiter` is its own. */
        sp_co *r = co->resumed ? co->waiter : NULL;
        if (r) {
            co->waiter = NULL;
            sp__set_resumed(s, co, 0);
            sp__switch_to(s, r);
        } else {
            sp__switch_next(s);
        }
        sp__fatal("a coroutine that ended was resumed");
    }
    co_end(s, co);
}

void sp_exit(void *result)
{
    sp__co_finish(sp__sched(), result);
}

/* Under M:N the joiner and the coroutine's end meet under the
 * coroutine's stripe lock (sp__co_lock); on one thread nothing races. */
static inline sp__lock *join_lock(sp_sched *s, sp_co *co)
{
    if (sp__likely(!s->mn))
        return NULL;
    sp__lock *l = sp__co_lock(co);
    sp__lock_acquire(l);
    return l;
}

static inline void join_unlock(sp__lock *l)
{
    if (l)
        sp__lock_release(l);
}

int sp__set_resumed(sp_sched *s, sp_co *co, int on)
{
    sp__lock *l = join_lock(s, co);
    if (on && (co->jflags & SP__J_JOINING)) {
        /* `waiter` is its joiner's: a resumer would take its place. */
        join_unlock(l);
        return -1;
    }
    if (on)
        co->waiter = s->current;
    co->resumed = (uint8_t)on;
    join_unlock(l);
    return 0;
}

static void join_unlink(sp_co *joiner)
{
    sp_co *target = joiner->wait_obj;
    sp__lock *l = join_lock(joiner->sched, target);
    if (target->waiter == joiner)
        target->waiter = NULL;
    join_unlock(l);
}

/* sp__wait_lk without a deadline, with the one-thread case inline. */
static sp__always_inline int join_wait(sp_sched *s, sp__lock *l)
{
    sp_co *me = s->current;
    if (sp__unlikely(s->mn != NULL || sp__canceled(me)))
        return sp__wait_lk(s, -1, l);
    me->wait_err = 0;
    sp__set_state(me, SP__CO_WAITING);
    sp__switch_next_inline(s);
    me->wait_unlink = NULL;
    return me->wait_err;
}

int sp_join(sp_co *co, void **result)
{
    sp_sched *s = sp__sched();
    if (co && co == s->current && !(co->flags & SP__F_ROOT)) {
        errno = EDEADLK;
        return -1;
    }
    if (!co || sp__co_state(co) == 0 || co->id == 0 /* a root or a scheduler */) {
        errno = EINVAL;
        return -1;
    }
    sp__lock *l = join_lock(s, co);
    if (co->jflags & (SP__J_DETACHED | SP__J_JOINING)) {
        join_unlock(l);
        errno = EINVAL;
        return -1;
    }
    if (co->resumed) {
        join_unlock(l);
        errno = EBUSY; /* its resumer waits on it; join once it suspends */
        return -1;
    }
    co->jflags |= SP__J_JOINING;
    if (sp__co_state(co) != SP__CO_DONE) {
        co->waiter = s->current;
        s->current->wait_obj = co;
        s->current->wait_unlink = join_unlink;
        int err = join_wait(s, l);
        s = sp__sched();
        if (err) {
            l = join_lock(s, co);
            co->jflags &= (uint8_t)~SP__J_JOINING;
            join_unlock(l);
            errno = err;
            return -1;
        }
    } else {
        join_unlock(l);
    }
    if (result)
        *result = co->val;
    co_free_object(s, co);
    return 0;
}

int sp_detach(sp_co *co)
{
    if (!co || sp__co_state(co) == 0 || co->id == 0 /* a root or a scheduler */) {
        errno = EINVAL;
        return -1;
    }
    sp_sched *s = sp__sched();
    sp__lock *l = join_lock(s, co);
    if (co->jflags & (SP__J_DETACHED | SP__J_JOINING)) {
        join_unlock(l);
        errno = EINVAL;
        return -1;
    }
    co->jflags |= SP__J_DETACHED;
    int done = sp__co_state(co) == SP__CO_DONE;
    join_unlock(l);
    if (done)
        sp__co_free_object(s, co);
    return 0;
}

int sp_set_pinned(int on)
{
    sp_co *co = sp__sched()->current;
    if (co->id == 0 || co->kind == SP_STACK_SHARED || (!on && co->resumed)) {
        errno = EINVAL; /* a resumed one must suspend back on its resumer's worker */
        return -1;
    }
    /* Its own flags, written only by whoever runs it: itself. */
    if (on)
        co->flags |= SP__F_PINNED;
    else
        co->flags &= ~SP__F_PINNED;
    return 0;
}

sp_co *sp_self(void) { return sp__sched()->current; }
uint64_t sp_co_id(const sp_co *co) { return co->id; }
const char *sp_co_name(const sp_co *co) { return co->name; }

/* Field by field: the struct has padding, and the scheduler stores the
 * default stack kind resolved. */
static int same_config(const sp_config *a, const sp_config *b)
{
    int bstack = b->stack == SP_STACK_DEFAULT ? SP_STACK_FIXED : (int)b->stack;
    return a->ctx == b->ctx && a->switch_mode == b->switch_mode && (int)a->stack == bstack &&
           a->stack_size == b->stack_size && a->fpenv_shared == b->fpenv_shared &&
           a->poller == b->poller && a->epoll_level == b->epoll_level;
}

int sp_run(const sp_config *cfg, sp_co_fn main_fn, void *arg, void **result)
{
    if (cfg && cfg->workers != 1) {
        int n = cfg->workers > 0 ? cfg->workers : sp__ncpus();
        if (cfg->workers < 0 || cfg->workers > SP_MAX_WORKERS)
            return -EINVAL;
        if (n > 1)
            return sp__mn_run(cfg, n, main_fn, arg, result);
    }
    if (cfg) {
        int rc = sp_thread_init(cfg);
        if (rc == -EBUSY && !same_config(&sp__sched()->cfg, cfg))
            return -EBUSY; /* configured otherwise already: say so */
        if (rc && rc != -EBUSY)
            return rc;
    }
    sp_sched *s = sp__sched();
    if (s->current != &s->root)
        return -EDEADLK; /* sp_run nests only from a thread's root */
    sp_co_attr attr = {.name = "main"};
    sp_co *co = sp_spawn(main_fn, arg, &attr);
    if (!co)
        return -errno;
    if (sp_join(co, result) != 0)
        return -errno;
    s = sp__sched();
    if (s->live > 0) {
        s->wait_all = s->current;
        sp__park(s);
    }
    return 0;
}
