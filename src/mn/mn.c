/* M:N (layer "mn"): worker threads, each running the per-thread scheduler
 * of the core over its own queues, idle workers stealing from busy ones.
 *
 * Per worker:
 *  - runnext: the coroutine the running one just woke or spawned; it runs
 *    next, on this CPU, so a ping-pong over a channel never leaves the
 *    worker and a freshly spawned child runs while its parent's data is
 *    hot.  Only the owner touches it; a streak limit keeps two coroutines
 *    that keep waking each other from starving the rest.
 *  - deque: a bounded Chase-Lev deque.  The owner pushes and takes at the
 *    bottom without a lock, newest first; a thief takes the oldest entry at
 *    the top with one CAS.  Chosen over Go's FIFO ring after measuring
 *    both here: with the ring, a tree of spawns (skynet) runs breadth
 *    first, a million coroutines are alive at once, the ring overflows
 *    into the global queue on every level and every stack is cold (650 ms
 *    for skynet on two workers, about Go's time); newest first keeps the
 *    tree depth first, few coroutines alive and their pooled stacks warm
 *    (about 200 ms), and the oldest entry a thief takes is the largest
 *    subtree left.  What newest-first would do to fairness is kept off the
 *    deque: coroutines woken by I/O go to the owner-only FIFO below, and
 *    sp_yield goes to the global queue (oldest first, as Go's Gosched).
 *  - rq (the core's list): FIFO, only this worker runs from it: coroutines
 *    its poller woke (their descriptor is this worker's), pinned ones, and
 *    those other threads sent here (the inbox).  It gets every other turn.
 * Shared by all: the global queue (overflow of full deques, yields, and
 * sp_spawn_in from other threads) and the idle list.
 *
 * Finding work (sp__mn_find): local queues, inbox, expired timers, global
 * queue, a look at this worker's poller, then stealing from every other
 * worker from a random start; then it sleeps (on a futex, or in its poller
 * once it has descriptors).  A worker that makes stealable work wakes one
 * sleeping worker, and only when none is already looking (nspinning), so
 * a burst of work wakes one thread at a time, not a herd.  No lost wake-up:
 * a worker going to sleep counts itself idle and then looks at every queue
 * again; one that publishes work then reads the idle count (both sides
 * sequentially consistent), so at least one of them sees the other.
 *
 * I/O: a poller per worker (the io layer's per-thread state); a descriptor
 * belongs to the worker that first waits on it, and a coroutine that waits
 * on it from another worker moves there (io/fd.c).  The road not taken is
 * one netpoller shared by all workers (Go's): any idle worker could take
 * any descriptor's event, but every registration and every event would go
 * through shared state, and the readied coroutine would mostly run far from
 * the cache that last served its connection. */
#define _GNU_SOURCE
#include "mn/mn.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int sp__ncpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        return n > 0 ? n : 1;
    }
    return 1;
}

static inline uint32_t ld(const uint32_t *p, int mo) { return __atomic_load_n(p, mo); }

/* ---- waking an idle worker ---- */

static void wake_one(sp__mn *mn, sp__worker *me)
{
    if (me)
        me->n_wakes++;
    sp__lock_acquire(&mn->idle_lock);
    sp__worker *w = mn->idle_list;
    if (w) {
        mn->idle_list = w->idle_next;
        w->idle = 0;
        __atomic_fetch_sub(&mn->nidle, 1, __ATOMIC_SEQ_CST);
    }
    sp__lock_release(&mn->idle_lock);
    if (w)
        sp__sched_kick(w->s);
}

/* After publishing stealable work. */
static inline void wake_if_idle(sp__mn *mn, sp__worker *me)
{
#if SP_TSAN
    /* TSan does not model fences (gcc refuses one under -fsanitize=thread);
     * an RMW on the idle count orders the same store-then-load, at the cost
     * of writing a shared line, in that build only. */
    uint32_t idle = __atomic_fetch_add(&mn->nidle, 0, __ATOMIC_SEQ_CST);
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint32_t idle = ld(&mn->nidle, __ATOMIC_RELAXED);
#endif
    if (idle && !ld(&mn->nspinning, __ATOMIC_RELAXED))
        wake_one(mn, me);
}

static void unidle(sp__mn *mn, sp__worker *w)
{
    sp__lock_acquire(&mn->idle_lock);
    if (w->idle) {
        sp__worker **p = &mn->idle_list;
        while (*p != w)
            p = &(*p)->idle_next;
        *p = w->idle_next;
        w->idle = 0;
        __atomic_fetch_sub(&mn->nidle, 1, __ATOMIC_SEQ_CST);
    }
    sp__lock_release(&mn->idle_lock);
}

/* ---- the global queue ---- */

static void global_push(sp__mn *mn, sp_co *first, sp_co *last, uint32_t n)
{
    last->rq_next = NULL;
    sp__lock_acquire(&mn->gq_lock);
    if (mn->gq_tail)
        mn->gq_tail->rq_next = first;
    else
        mn->gq_head = first;
    mn->gq_tail = last;
    __atomic_store_n(&mn->gq_n, mn->gq_n + n, __ATOMIC_RELEASE);
    sp__lock_release(&mn->gq_lock);
}


/* A coroutine from another thread's sp_spawn_in gets its stack here. */
static int birth(sp_sched *s, sp_co *co)
{
    co->flags &= ~SP__F_UNBORN;
    co->sched = s;
    int rc = sp__co_birth(s, co, co->stack.size);
    if (rc == 0)
        return 0;
    /* No stack to be had: it ends before it starts, with result NULL. */
    co->stack.size = 0;
    co->val = NULL;
    sp__mn_ended(s, co);
    return rc;
}

/* Takes a fair share of the global queue: one to run, the rest onto this
 * worker's ring. */
static sp_co *global_take(sp_sched *s)
{
    sp__mn *mn = s->mn;
    if (!ld(&mn->gq_n, __ATOMIC_ACQUIRE))
        return NULL;
    sp__lock_acquire(&mn->gq_lock);
    uint32_t n = mn->gq_n, k = n / (uint32_t)mn->n + 1;
    if (k > n)
        k = n;
    if (k > SP__RING / 2)
        k = SP__RING / 2;
    sp_co *head = mn->gq_head, *co = head;
    for (uint32_t i = 1; i < k; i++)
        co = co->rq_next;
    if (co) {
        mn->gq_head = co->rq_next;
        if (!mn->gq_head)
            mn->gq_tail = NULL;
        co->rq_next = NULL;
    }
    __atomic_store_n(&mn->gq_n, n - k, __ATOMIC_RELAXED);
    sp__lock_release(&mn->gq_lock);
    s->w->n_global += k;

    sp_co *run = NULL;
    for (co = head; co && k--;) {
        sp_co *next = co->rq_next;
        if (!(co->flags & SP__F_UNBORN) || birth(s, co) == 0) {
            if (!run)
                run = co;
            else
                sp__mn_ready(s, co, 0); /* a pinned one (born here) stays here */
        }
        co = next;
    }
    return run;
}

/* ---- the deque (Chase-Lev, after Le, Pop, Cohen and Zappa Nardelli's
 * formulation for weak memory models) ----
 * The owner pushes and takes at the bottom without a lock; a thief takes
 * the oldest entry at the top with one CAS, racing the owner only for the
 * last entry.  Bounded: a full deque sends the new entry to the global
 * queue. */

static void dq_push(sp_sched *s, sp__worker *w, sp_co *co)
{
    int64_t b = __atomic_load_n(&w->bottom, __ATOMIC_RELAXED);
    int64_t t = __atomic_load_n(&w->top, __ATOMIC_ACQUIRE);
    if (sp__unlikely(b - t >= SP__RING)) {
        global_push(s->mn, co, co, 1);
        return;
    }
    __atomic_store_n(&w->slot[b % SP__RING], co, __ATOMIC_RELAXED);
    __atomic_store_n(&w->bottom, b + 1, __ATOMIC_RELEASE);
}

static sp_co *dq_take(sp__worker *w)
{
    int64_t b = __atomic_load_n(&w->bottom, __ATOMIC_RELAXED) - 1;
    /* The exchange is the full barrier between publishing the smaller
     * bottom and reading top (a thief does the converse). */
    __atomic_exchange_n(&w->bottom, b, __ATOMIC_SEQ_CST);
    int64_t t = __atomic_load_n(&w->top, __ATOMIC_SEQ_CST);
    if (t > b) {
        __atomic_store_n(&w->bottom, b + 1, __ATOMIC_RELAXED);
        return NULL; /* empty */
    }
    sp_co *co = __atomic_load_n(&w->slot[b % SP__RING], __ATOMIC_RELAXED);
    if (t == b) {
        /* The last one: a thief may be taking it too. */
        if (!__atomic_compare_exchange_n(&w->top, &t, t + 1, 0, __ATOMIC_SEQ_CST,
                                         __ATOMIC_RELAXED))
            co = NULL;
        __atomic_store_n(&w->bottom, b + 1, __ATOMIC_RELAXED);
    }
    return co;
}

/* Takes v's oldest entry; NULL if empty or lost to another taker. */
static sp_co *dq_steal(sp__worker *v)
{
    int64_t t = __atomic_load_n(&v->top, __ATOMIC_SEQ_CST);
    int64_t b = __atomic_load_n(&v->bottom, __ATOMIC_SEQ_CST);
    if (t >= b)
        return NULL;
    sp_co *co = __atomic_load_n(&v->slot[t % SP__RING], __ATOMIC_RELAXED);
    if (!__atomic_compare_exchange_n(&v->top, &t, t + 1, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_RELAXED))
        return NULL;
    return co;
}

static inline int dq_nonempty(sp__worker *v)
{
    return __atomic_load_n(&v->bottom, __ATOMIC_RELAXED) >
           __atomic_load_n(&v->top, __ATOMIC_RELAXED);
}

/* v's oldest entry, with a few tries against other takers; NULL if none. */
static sp_co *steal_from(sp__worker *v)
{
    for (int tries = 0; tries < 4 && dq_nonempty(v); tries++) {
        sp_co *co = dq_steal(v);
        if (co)
            return co;
    }
    return NULL;
}

static inline uint32_t rnd(sp__worker *w)
{
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

static sp_co *steal_any(sp_sched *s)
{
    sp__mn *mn = s->mn;
    sp__worker *w = s->w;
    int n = mn->n;
    for (int pass = 0; pass < 2; pass++) {
        int start = (int)(rnd(w) % (uint32_t)n);
        for (int i = 0; i < n; i++) {
            sp__worker *v = mn->w[(start + i) % n];
            if (v == w)
                continue;
            sp_co *co = steal_from(v);
            if (co) {
                w->n_steals++;
                return co;
            }
        }
    }
    return NULL;
}

/* Whether any queue a worker could take from has something. */
static int work_visible(sp_sched *s)
{
    sp__mn *mn = s->mn;
    if (ld(&mn->done, __ATOMIC_ACQUIRE) || ld(&mn->gq_n, __ATOMIC_ACQUIRE) ||
        ld(&s->inbox_n, __ATOMIC_ACQUIRE))
        return 1;
    for (int i = 0; i < mn->n; i++) {
        sp__worker *v = mn->w[i];
        if (v != s->w && dq_nonempty(v))
            return 1;
    }
    return 0;
}

/* ---- the scheduler's entry points ---- */

void sp__mn_ready(sp_sched *s, sp_co *co, int next)
{
    sp__worker *w = s->w;
    if (sp__unlikely(co->flags & SP__F_PINNED) && co->sched != s) {
        sp__send_home(co->sched, co, 0);
        return;
    }
    if (sp__unlikely(co == s->current || (co->flags & (SP__F_PINNED | SP__F_FDWAIT)))) {
        /* Still on its stack (readied by a poll between its park and its
         * switch), bound here, or readied by this worker's poller for a
         * descriptor of this worker: no other worker may take it. */
        sp__rq_push(s, co);
        return;
    }
    if (next) {
        sp_co *old = w->runnext;
        w->runnext = co;
        if (!old)
            return;
        co = old;
    }
    dq_push(s, w, co);
    wake_if_idle(s->mn, s->w);
}

sp_co *sp__mn_next(sp_sched *s)
{
    sp__worker *w = s->w;
    /* A caller that kept its sp_sched across a park may now run on
     * another worker: switching from the old one's queues would run two
     * threads on one stack.  Cheap to check, fatal to miss. */
    if (sp__unlikely(s != sp__tls_sched))
        sp__fatal("internal: a switch from worker %d's scheduler on another thread "
                  "(a scheduler pointer kept across a park)", w->index);
    sp_co *co = w->runnext;
    if (co && w->streak < SP__RUNNEXT_STREAK) {
        w->runnext = NULL;
        w->streak++;
        return co;
    }
    w->streak = 0;
    sp_co *c2;
    /* The owner-only queue (coroutines woken by this worker's poller,
     * pinned ones, those sent here) is FIFO and gets every other turn; the
     * deque runs newest first, which keeps a tree of spawns depth first
     * (few alive at once, their stacks warm). */
    if ((w->tick++ & 1) && s->rq_head)
        return sp__rq_pop(s);
    if ((c2 = dq_take(w)))
        return c2;
    if (s->rq_head)
        return sp__rq_pop(s);
    if (co)
        w->runnext = NULL;
    return co;
}

void sp__mn_poll(sp_sched *s)
{
    sp__worker *w = s->w;
    /* The global queue now and then even when busy, so that coroutines
     * spawned from other threads do not wait for this worker to idle. */
    if (ld(&s->mn->gq_n, __ATOMIC_RELAXED) && (++w->gticks % 4 == 0 || !dq_nonempty(w))) {
        sp_co *co = global_take(s);
        if (co)
            sp__mn_ready(s, co, 0);
    }
}

/* With idle_lock held and every worker idle (no coroutine runs, and each
 * worker wrote its own counts before it took the lock): 1 when no coroutine
 * can ever be woken, as the single-threaded scheduler judges it for its
 * thread (sp__sched_wakeable), and nothing is queued anywhere. */
static int stuck(sp__mn *mn)
{
    if (ld(&mn->gq_n, __ATOMIC_ACQUIRE))
        return 0;
    for (int i = 0; i < mn->n; i++) {
        sp__worker *v = mn->w[i];
        sp_sched *vs = v->s;
        if (dq_nonempty(v) || ld(&vs->inbox_n, __ATOMIC_ACQUIRE) || sp__sched_wakeable(vs))
            return 0;
    }
    return 1;
}

/* Yields go to the global queue, oldest first, as Go's Gosched does: on
 * the deque the yielder would be the newest entry and run again first. */
static void post_global(sp_sched *s, void *co)
{
    global_push(s->mn, co, co, 1);
    wake_if_idle(s->mn, s->w);
}

void sp__mn_yield(sp_sched *s)
{
    sp_co *cur = s->current, *next = sp__mn_next(s);
    if (!next)
        next = global_take(s);
    if (!next)
        return;
    sp__set_state(cur, SP__CO_READY);
    if (cur->flags & SP__F_PINNED)
        sp__rq_push(s, cur); /* owner-only: nobody takes it before it is saved */
    else
        sp__set_post(s, post_global, cur);
    if (s->cfg.switch_mode == SP_SWITCH_STAR) {
        s->pending = next;
        next = s->sched_co;
    }
    sp__switch_to(s, next);
}

void sp__mn_spawned(sp_sched *s, sp_co *co)
{
    sp__worker *w = s->w;
    __atomic_store_n(&w->live, w->live + 1, __ATOMIC_RELAXED);
    if (co->state == SP__CO_SUSPENDED)
        return;
    sp__set_state(co, SP__CO_READY);
    /* Go's order: the child runs next, its parent's data still hot. */
    sp__mn_ready(s, co, 1);
}

static void finish(sp__mn *mn)
{
    pthread_mutex_lock(&mn->end_lock);
    __atomic_store_n(&mn->done, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < mn->n; i++) {
        sp_sched *ws = __atomic_load_n(&mn->w[i]->s, __ATOMIC_ACQUIRE);
        if (ws)
            sp__sched_kick(ws);
    }
    pthread_cond_broadcast(&mn->end_cond);
    pthread_mutex_unlock(&mn->end_lock);
}

void sp__mn_ended(sp_sched *s, sp_co *co)
{
    sp__mn *mn = s->mn;
    sp__lock *l = sp__co_lock(co);
    sp__lock_acquire(l);
    sp__set_state(co, SP__CO_DONE);
    sp_co *joiner = co->waiter;
    co->waiter = NULL;
    int detached = co->jflags & SP__J_DETACHED;
    sp__lock_release(l);
    /* From here a joiner may free co. */
    if (detached)
        sp__co_free_object(s, co);
    else if (joiner)
        sp__wake(s, joiner, 0);
    /* The runtime ends once every worker is idle and the counts sum to
     * zero (sleep_idle). */
    sp__worker *w = s->w;
    __atomic_store_n(&w->live, w->live - 1, __ATOMIC_RELAXED);
    (void)mn;
}

static void sleep_idle(sp_sched *s)
{
    sp__mn *mn = s->mn;
    sp__worker *w = s->w;
    sp__lock_acquire(&mn->idle_lock);
    w->idle = 1;
    w->idle_next = mn->idle_list;
    mn->idle_list = w;
    uint32_t idle = __atomic_add_fetch(&mn->nidle, 1, __ATOMIC_SEQ_CST);
    int over = 0;
    if (idle == (uint32_t)mn->n) {
        /* Everyone idle: nothing runs, so no count changes under us. */
        int64_t live = mn->live_foreign;
        for (int i = 0; i < mn->n; i++)
            live += __atomic_load_n(&mn->w[i]->live, __ATOMIC_RELAXED);
        if (live == 0) {
            over = 1;
            __atomic_store_n(&mn->done, 1, __ATOMIC_SEQ_CST);
        } else if (stuck(mn)) {
            sp__fatal("deadlock: every coroutine of this runtime is parked and "
                      "nothing can wake them");
        }
    }
    sp__lock_release(&mn->idle_lock);
    if (over)
        finish(mn);
    else if (!work_visible(s)) {
        w->n_sleeps++;
        sp_co *t = sp__theap_min(&s->timers);
        sp__sched_sleep(s, t ? t->deadline : -1);
    }
    unidle(mn, w);
}

/* A few microseconds of looking before sleeping, while another worker is
 * busy: a coroutine it is about to wake (the other end of a channel) is
 * taken without the futex sleep and wake-up, which cost more than this
 * spin.  Returns 1 once there is something to look at. */
static int spin_for_work(sp_sched *s)
{
    sp__mn *mn = s->mn;
    if (!mn->spin || ld(&mn->nidle, __ATOMIC_RELAXED) + 1 >= (uint32_t)mn->n)
        return 0; /* everyone else sleeps: nobody will make work */
    for (int i = 0; i < SP__SPIN_ROUNDS; i++) {
        for (int k = 0; k < 4; k++)
            __builtin_ia32_pause();
        if (work_visible(s))
            return 1;
    }
    return 0;
}

sp_co *sp__mn_find(sp_sched *s)
{
    sp__mn *mn = s->mn;
    sp__worker *w = s->w;
    for (;;) {
        if (ld(&mn->done, __ATOMIC_ACQUIRE))
            return NULL;
        sp_co *co = sp__mn_next(s);
        if (co)
            return co;
        s->since_poll = 0;
        if (ld(&s->inbox_n, __ATOMIC_ACQUIRE)) {
            sp__inbox_drain(s);
            continue;
        }
        sp_co *t = sp__theap_min(&s->timers);
        if (t && t->deadline <= sp_now() && sp__timers_expire(s, sp_now()))
            continue;
        if ((co = global_take(s)))
            return co;
        if (s->poll && s->poll_waiters) {
            s->poll(s, 0);
            if ((co = sp__mn_next(s)))
                return co;
        }
        /* Steal, unless half the busy workers are already looking. */
        uint32_t spinning = ld(&mn->nspinning, __ATOMIC_RELAXED);
        uint32_t busy = (uint32_t)mn->n - ld(&mn->nidle, __ATOMIC_RELAXED);
        if (2 * spinning < busy) {
            __atomic_fetch_add(&mn->nspinning, 1, __ATOMIC_SEQ_CST);
            co = steal_any(s);
            __atomic_fetch_sub(&mn->nspinning, 1, __ATOMIC_SEQ_CST);
            if (co) {
                /* This worker stops looking: if work is left anywhere, let
                 * another one look (as Go's spinning M wakes a P when it
                 * finds work).  Otherwise work queued while this one was
                 * the looker, which kept the spawners from waking anyone,
                 * waits for a sleeper that nobody wakes while the busy
                 * workers run coroutines that do not park. */
                if (dq_nonempty(w) || work_visible(s))
                    wake_if_idle(mn, w);
                return co;
            }
        }
        if (spin_for_work(s))
            continue;
        sleep_idle(s);
        if (s->timers.n)
            sp__timers_expire(s, sp_now());
    }
}

/* ---- workers and sp_run ---- */

static void *worker_main(void *arg)
{
    sp__worker *w = arg;
    sp__mn *mn = w->mn;
    sp_sched *s = sp__sched_create(&mn->cfg);
    s->mn = mn;
    s->yield_inline = 0; /* sp_yield on a worker is sp__mn_yield */
    s->w = w;
    /* Ids stay unique across workers: worker i hands out i+1 + k(n+1);
     * slot n is sp_spawn_in's. */
    s->next_id = (uint64_t)w->index + 1;
    s->id_step = (uint64_t)mn->n + 1;
    s->root.flags |= SP__F_PINNED;
    __atomic_store_n(&w->s, s, __ATOMIC_RELEASE);
    sp__set_state(&s->root, SP__CO_PARKED);
    sp__switch_to(s, s->sched_co);
    /* The runtime is over (sched_main came back here).  The scheduler
     * outlives the thread: sp__mn_run frees it once all have ended. */
    return NULL;
}

static void *mn_main(void *arg)
{
    sp__mn *mn = arg;
    mn->result = mn->main_fn(mn->main_arg);
    return NULL;
}

static sp_co *spawn_foreign(sp__mn *mn, sp_co_fn fn, void *arg, const sp_co_attr *attr)
{
    sp_co_attr none = {0};
    if (!attr)
        attr = &none;
    if (attr->suspended) {
        errno = EINVAL; /* no thread of this runtime could sp_resume it */
        return NULL;
    }
    /* From malloc: this thread has no pool of the runtime's.  The block
     * joins a worker's pool when the coroutine is freed. */
    sp_co *co = malloc(sizeof *co);
    if (!co)
        return NULL;
    int rc = sp__co_init(co, (int)mn->cfg.stack, fn, arg, attr);
    if (rc < 0) {
        free(co);
        errno = -rc;
        return NULL;
    }
    co->flags |= SP__F_UNBORN | SP__F_HEAP;
    co->stack.size = (uint32_t)(attr->stack_size ? attr->stack_size : mn->cfg.stack_size);
    co->sched = NULL; /* set by the worker that takes it (birth) */
    co->id = __atomic_add_fetch(&mn->foreign_id, (uint64_t)mn->n + 1, __ATOMIC_RELAXED);
    sp__lock_acquire(&mn->idle_lock);
    int over = __atomic_load_n(&mn->done, __ATOMIC_ACQUIRE);
    if (!over)
        mn->live_foreign++;
    sp__lock_release(&mn->idle_lock);
    if (over) {
        free(co);
        errno = ESRCH; /* every coroutine ended: the runtime is over */
        return NULL;
    }
    sp__set_state(co, SP__CO_READY);
    global_push(mn, co, co, 1);
    wake_if_idle(mn, NULL);
    return co;
}

sp_co *sp_spawn_in(sp_runtime *rt, sp_co_fn fn, void *arg, const sp_co_attr *attr)
{
    sp__mn *mn = (sp__mn *)rt;
    if (!mn || !fn) {
        errno = EINVAL;
        return NULL;
    }
    sp_sched *s = sp__tls_sched;
    if (s && s->mn == mn)
        return sp_spawn(fn, arg, attr);
    return spawn_foreign(mn, fn, arg, attr);
}

sp_runtime *sp_runtime_self(void)
{
    sp_sched *s = sp__tls_sched;
    return s ? (sp_runtime *)s->mn : NULL;
}

int sp_move_to(int index)
{
    sp_sched *s = sp__tls_sched;
    sp__mn *mn = s ? s->mn : NULL;
    sp_co *co = s ? s->current : NULL;
    if (!mn || index < 0 || index >= mn->n || co->id == 0 || co->kind == SP_STACK_SHARED ||
        co->resumed) {
        errno = EINVAL;
        return -1;
    }
    sp_sched *to;
    /* sp_run starts the workers while main already runs: wait for it. */
    while (!(to = __atomic_load_n(&mn->w[index]->s, __ATOMIC_ACQUIRE))) {
        if (__atomic_load_n(&mn->nthreads, __ATOMIC_ACQUIRE) <= index &&
            __atomic_load_n(&mn->threads_done, __ATOMIC_ACQUIRE)) {
            errno = EINVAL; /* that worker's thread could not be started */
            return -1;
        }
        sp_sleep_ns(100000);
        s = sp__tls_sched; /* it may have moved meanwhile */
    }
    if (to == s)
        return 0;
    sp__move(s, to);
    return 0;
}

int sp_worker_index(void)
{
    sp_sched *s = sp__tls_sched;
    return s && s->w ? s->w->index : -1;
}

int sp__mn_run(const sp_config *cfg, int n, sp_co_fn main_fn, void *arg, void **result)
{
    sp_sched *cur = sp__tls_sched;
    if (cur && cur->current != &cur->root)
        return -EDEADLK; /* this thread would block under its coroutines */
    if (cfg->ctx > SP_CTX_SJLJ || cfg->switch_mode > SP_SWITCH_STAR ||
        cfg->stack > SP_STACK_SHARED || !main_fn)
        return -EINVAL;
    sp__mn *mn = calloc(1, sizeof *mn + (size_t)n * sizeof(sp__worker *));
    if (!mn)
        return -ENOMEM;
    mn->n = n;
    /* More workers than CPUs: a spinning worker would take its CPU from
     * one with work. */
    mn->spin = n <= sp__ncpus();
    mn->cfg = *cfg;
    if (mn->cfg.stack == SP_STACK_DEFAULT)
        mn->cfg.stack = SP_STACK_FIXED;
    mn->main_fn = main_fn;
    mn->main_arg = arg;
    struct rlimit rl;
    rlim_t nfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_max : 65536;
    if (nfd > (1u << 22))
        nfd = 1u << 22; /* past that, descriptors are nobody's (see io/fd.c) */
    mn->nfd_owner = (uint32_t)nfd;
    mn->fd_owner = calloc(nfd, sizeof *mn->fd_owner);
    if (!mn->fd_owner) {
        free(mn);
        return -ENOMEM;
    }
    pthread_mutex_init(&mn->end_lock, NULL);
    pthread_cond_init(&mn->end_cond, NULL);
    int rc = 0, started = 0;
    for (int i = 0; i < n; i++) {
        sp__worker *w = aligned_alloc(64, SP__ALIGN_UP(sizeof *w, 64));
        if (!w) {
            rc = -ENOMEM;
            goto out;
        }
        memset(w, 0, sizeof *w);
        w->mn = mn;
        w->index = i;
        w->rng = 0x9e3779b9u * (uint32_t)(i + 1);
        mn->w[i] = w;
    }
    /* sp_spawn_in's ids: n+1, 2(n+1), ... (worker_main hands out the rest). */
    mn->foreign_id = 0;
    sp_co_attr attr = {.name = "main", .detached = 1};
    if (!spawn_foreign(mn, mn_main, mn, &attr)) {
        rc = -errno;
        goto out;
    }
    for (; started < n; started++) {
        if (pthread_create(&mn->w[started]->thread, NULL, worker_main, mn->w[started]) != 0) {
            if (started == 0) {
                rc = -EAGAIN; /* nothing ran: main is still queued */
                goto out;
            }
            break; /* fewer workers than asked: the ones we have share */
        }
        __atomic_store_n(&mn->nthreads, started + 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&mn->threads_done, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&mn->end_lock);
    while (!__atomic_load_n(&mn->done, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&mn->end_cond, &mn->end_lock);
    pthread_mutex_unlock(&mn->end_lock);
    for (int i = 0; i < started; i++)
        pthread_join(mn->w[i]->thread, NULL);
    for (int i = 0; i < started; i++)
        sp__sched_free(mn->w[i]->s);
    if (result)
        *result = mn->result;
    if (getenv("SPINDLE_MN_STATS"))
        for (int i = 0; i < started; i++) {
            sp__worker *w = mn->w[i];
            fprintf(stderr,
                    "spindle: worker %d: %llu steals, %llu from the global queue, %llu "
                    "sleeps, %llu wakes sent\n",
                    i, (unsigned long long)w->n_steals, (unsigned long long)w->n_global,
                    (unsigned long long)w->n_sleeps,
                    (unsigned long long)w->n_wakes);
        }
out:
    if (rc && mn->gq_head) /* main never ran */
        free(mn->gq_head);
    for (int i = 0; i < n; i++)
        free(mn->w[i]);
    pthread_mutex_destroy(&mn->end_lock);
    pthread_cond_destroy(&mn->end_cond);
    free(mn->fd_owner);
    free(mn);
    return rc;
}
