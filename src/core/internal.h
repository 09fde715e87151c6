/* The coroutine object and the per-thread scheduler (layer "core").
 * Internal: the public API is in include/spindle.h. */
#ifndef SP_CORE_INTERNAL_H
#define SP_CORE_INTERNAL_H

#include <spindle.h>

#include "arch/ctx.h"
#include "common.h"
#include "stack/stack.h"

/* ---- per-thread small-object allocator (mem.c) ---- */

/* 8-byte steps to 256 B, 32-byte steps to 512 B, then powers of two to
 * 256 KiB (the largest saved shared stack).  Fine steps at the small end
 * because coroutine objects and shared-stack save buffers live there and a
 * million of them multiply every wasted byte.  Blocks under 512 bytes are
 * 8-aligned, larger ones 16-aligned. */
#define SP__MEM_NCLASS (32 + 8 + 9)
#define SP__MEM_MAX (256u * 1024)

typedef struct sp__mem {
    void *free[SP__MEM_NCLASS];
    char *chunk;
    size_t chunk_left;
    size_t chunk_bytes; /* address space taken from the kernel, for stats */
} sp__mem;

/* Returns a block of at least size bytes and its real capacity
 * in *cap, or NULL with errno ENOMEM.  Sizes above SP__MEM_MAX are mmap'd. */
void *sp__mem_alloc(sp__mem *m, size_t size, size_t *cap);
void sp__mem_free(sp__mem *m, void *p, size_t cap);

/* The same for a size known at compile time and at most 256 bytes (a
 * coroutine object, a backend context): the class is a constant, the hot
 * path a pop or a push of its free list.  Blocks go back with the size
 * they were asked with. */
static inline void *sp__mem_alloc_small(sp__mem *m, size_t size)
{
    void **head = &m->free[(size + 7) / 8 - 1];
    void *p = *head;
    if (sp__likely(p != NULL)) {
        *head = *(void **)p;
        return p;
    }
    size_t cap;
    return sp__mem_alloc(m, size, &cap);
}

static inline void sp__mem_free_small(sp__mem *m, void *p, size_t size)
{
    void **head = &m->free[(size + 7) / 8 - 1];
    *(void **)p = *head;
    *head = p;
}

/* ---- coroutine ---- */

enum {
    SP__CO_READY = 1,  /* in a run queue */
    SP__CO_RUNNING,
    SP__CO_PARKED,     /* waiting for something that will sp__ready it */
    SP__CO_SUSPENDED,  /* sp_suspend / attr.suspended: only sp_resume wakes */
    SP__CO_DONE,
    /* Parked in sp__wait: a wake, its deadline or sp_cancel ends it,
     * whichever claims it first (sp__claim). */
    SP__CO_WAITING,
};

/* sp_co.jflags: under M:N another worker joins or detaches while the
 * coroutine runs and writes its own flags, so these live apart (guarded by
 * the coroutine's stripe lock, sp__co_lock). */
enum {
    SP__J_DETACHED = 1 << 0,
    SP__J_JOINING = 1 << 1,   /* a joiner waits or has joined */
};



enum {
    SP__F_FRESH = 1 << 2,     /* shared stack: context not yet made */
    SP__F_CANARY = 1 << 3,    /* unguarded stack: check the canary on suspend */
    SP__F_ROOT = 1 << 4,      /* the thread's own stack */
    SP__F_SCHED = 1 << 6,     /* the scheduler's own context */
    SP__F_PINNED = 1 << 7,    /* M:N: never leaves the worker it is on */
    SP__F_TIMED = 1 << 8,     /* its wait has a deadline in its worker's heap */
    SP__F_UNBORN = 1 << 10,   /* sp_spawn_in: no stack yet; the worker that takes it makes one */
    SP__F_ENDED = 1 << 11,    /* returned or called sp_exit (DONE comes later under M:N) */
    SP__F_HEAP = 1 << 12,     /* the object is from malloc (sp_spawn_in), not a pool */
    /* M:N: parked on a descriptor of its worker; its poller's wake keeps
     * it there (a thief would only send it back for its next read). */
    SP__F_FDWAIT = 1 << 13,
};

/* How a wait ended (sp_co.wait_err): 0 when what it waited for happened. */

struct sp_sched;

/* sp_co.unpark: an sp_unpark that came while the coroutine was not in
 * sp_park (kept for its next one), or the coroutine is in sp_park. */
enum { SP__UNPARK_KEPT = 1, SP__UNPARK_PARKED = 2 };

/* 120 bytes: a million idle coroutines on shared stacks pay for every one
 * of them, so fields that are never live at once share storage. */
struct sp_co {
    sp__ctx ctx;
    sp_co *rq_next, *rq_prev;  /* run queue links (wait lists while parked) */
    struct sp_sched *sched;    /* the scheduler it belongs to */
    uint64_t id;
    const char *name;
    union {
        sp_co_fn fn;           /* until it starts */
        /* Once started: removes the coroutine from whatever it waits on
         * besides the timer (a descriptor, a channel), when a timeout or
         * sp_cancel ends the wait. */
        void (*wait_unlink)(sp_co *co);
    };
    union {
        void *val;             /* the argument until it starts, the result once it ends */
        int64_t deadline;      /* in between: while in the timer heap */
    };
    sp_co *waiter;             /* its joiner, or its resumer while resumed */
    union {
        sp__stack stack;       /* fixed and virtual stacks */
        struct {               /* shared: its frames while off the run stack */
            char *save_buf;
            uint32_t save_len, save_cap;
        };
    };
    void *wait_obj;            /* what it waits on, for wait_unlink */
    uint32_t heap_idx;         /* its timer heap slot, 0 when not in it */
    int wait_err;              /* errno a wait ended with, 0 when none */
    uint8_t state, kind;       /* state: atomic under M:N (sp__claim) */
    uint16_t flags;            /* written only by whoever owns the coroutine now */
    uint8_t canceled;          /* sp_cancel: every blocking call fails; atomic */
    uint8_t unpark;            /* SP__UNPARK_*, under the stripe lock */
    uint8_t jflags;            /* SP__J_* */
    /* Entered by sp_resume: `waiter` is the resumer.  Written only on its
     * own thread (under the stripe lock with M:N, where a joiner reads it). */
    uint8_t resumed;
#if SP_TSAN
    void *tsan_fiber;
#endif
};
#if !SP_TSAN
_Static_assert(sizeof(struct sp_co) == 120, "sp_co grew: idle memory is measured per byte");
#endif

/* ---- timers (timer.c) ---- */

/* A 4-ary min-heap of coroutines by deadline: insert and remove are
 * O(log4 n) with half the depth of a binary heap, and the four children of a
 * node share a cache line of slots.  1-based; slot 0 unused. */
typedef struct sp__theap {
    sp_co **a;
    uint32_t n, cap;
} sp__theap;

int sp__theap_push(sp__theap *h, sp_co *co);
void sp__theap_remove(sp__theap *h, sp_co *co);
static inline sp_co *sp__theap_min(const sp__theap *h) { return h->n ? h->a[1] : NULL; }

/* ---- locks ----
 * A futex lock (Drepper's three states: 0 free, 1 held, 2 held with
 * sleepers) after a short spin: the sections it guards are a few loads and
 * stores, but a holder can be preempted on a loaded machine, and then a
 * spinning waiter would burn its whole time slice.  Under M:N a coroutine
 * may park holding one: the switch releases it once its context is saved
 * (sp__wait_lk), so a waker that takes the lock never finds a coroutine
 * still half on its stack. */
typedef struct sp__lock {
    int v;
} sp__lock;

void sp__lock_slow(sp__lock *l);
void sp__unlock_slow(sp__lock *l);

static inline void sp__lock_acquire(sp__lock *l)
{
    int z = 0;
    if (sp__unlikely(!__atomic_compare_exchange_n(&l->v, &z, 1, 0, __ATOMIC_ACQUIRE,
                                                  __ATOMIC_RELAXED)))
        sp__lock_slow(l);
}

static inline void sp__lock_release(sp__lock *l)
{
    if (sp__unlikely(__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2))
        sp__unlock_slow(l);
}

/* One of a fixed table of locks, chosen by the coroutine's address: guards
 * join, detach and sp_park/sp_unpark of that coroutine under M:N. */
sp__lock *sp__co_lock(const sp_co *co);

/* ---- scheduler ---- */

struct sp_sched;
struct sp__mn;
struct sp__worker;
/* The layer above (poll/io) plugs in here: waits up to timeout_ns (-1: no
 * limit, 0: just look) for I/O and wake-ups from other threads, readying
 * the coroutines they concern.  Returns how many it readied, or -errno. */
typedef int (*sp__poll_hook)(struct sp_sched *s, int64_t timeout_ns);

enum { SP__SW_ASM, SP__SW_ASM_NOFP, SP__SW_EXT };

typedef struct sp_sched {
    sp_co *current;
    sp_co *rq_head, *rq_tail;  /* FIFO of ready coroutines */
    sp_co *pending;            /* what the scheduler context runs next */
    sp_co *shared_owner;       /* whose frames are on the run stack */
    sp_co *wait_all;           /* parked in sp_run until `live` drops to 0 */
    sp_co *sched_co;           /* the scheduler context (its own stack) */
    uint32_t rq_len;
    uint32_t since_poll;       /* switches since I/O was last looked at */
    sp__theap timers;
    sp__poll_hook poll;        /* NULL until the first I/O wait */
    void *poll_ctx;            /* the poll layer's per-thread state */
    /* Releases poll_ctx when the thread ends; returns 0 if it could not
     * (work of the thread's is still out on other threads). */
    int (*poll_fini)(struct sp_sched *s);
    uint64_t poll_waiters;     /* coroutines only the poll hook can wake */
    /* Run by whichever context runs next on this thread, once the one that
     * set it is off its stack: releasing an ended coroutine's stack,
     * releasing the lock a coroutine parked under, publishing a coroutine
     * to other workers (sp__run_post). */
    void (*post)(struct sp_sched *s, void *arg);
    void *post_arg;
    /* M:N: the runtime and this worker's queues (src/mn); NULL for the
     * single-threaded scheduler, whose hot paths then take no lock and make
     * no atomic read-modify-write. */
    struct sp__mn *mn;
    struct sp__worker *w;
    /* Coroutines other threads hand to this one (sp_unpark, a wake of a
     * pinned coroutine or one with a deadline in this thread's heap, a
     * coroutine moving to the worker that owns its descriptor). */
    sp__lock inbox_lock;
    uint32_t inbox_n;          /* atomic: entries in inbox */
    uint32_t inbox_cap;
    sp_co **inbox;
    uint32_t foreign_waits;    /* coroutines in sp_park: another thread may wake them */
    uint32_t wake_word;        /* atomic: 1 once kicked since it last slept */
    uint32_t in_poll;          /* atomic: sleeps in the poll hook, not on the futex */
    /* Interrupts the poll hook's wait from another thread (the io layer
     * sets it with `poll`). */
    int (*poll_wake)(struct sp_sched *s);
    sp_config cfg;
    /* From cfg, for the switch's one test: SP__SW_ASM (asm, saving the
     * floating-point control words), SP__SW_ASM_NOFP (fpenv_shared) or
     * SP__SW_EXT (ucontext, sjlj). */
    uint8_t sw;
    /* 1 when sp_yield may take its inline path: the asm switch, direct
     * mode, not a worker of M:N (mn.c clears it when it sets mn). */
    uint8_t yield_inline;
    uint64_t next_id, id_step;
    uint64_t live;             /* spawned coroutines not yet ended */
    sp__stack shared_stack;    /* the run stack of shared-stack coroutines */
    sp__stack_pool stacks;
    sp__mem mem;
    void *thread_stack_lo;     /* the root's stack, for sanitizer annotations */
    size_t thread_stack_size;
    sp_co root;
} sp_sched;

/* Whether anything may still wake a coroutine of s that waits: a timer, a
 * descriptor or offload wait, or an sp_park that another thread may end.
 * When nothing may and nothing is ready, the runtime is deadlocked.  The
 * poll waiters are looked at before the timer heap: under M:N another
 * worker asks this of an idle one, whose poller takes timers out of its
 * heap only while it has poll waiters. */
static inline int sp__sched_wakeable(const sp_sched *s)
{
    return (s->poll && s->poll_waiters) || __atomic_load_n(&s->foreign_waits, __ATOMIC_RELAXED) ||
           s->timers.n;
}

extern sp__tls sp_sched *sp__tls_sched;

sp_sched *sp__sched_create(const sp_config *cfg);

static inline sp_sched *sp__sched(void)
{
    sp_sched *s = sp__tls_sched;
    if (sp__unlikely(!s))
        s = sp__sched_create(NULL);
    return s;
}

/* Ready queue: O(1) push, pop and removal from the middle (for yield_to). */
static inline void sp__rq_push(sp_sched *s, sp_co *co)
{
    s->rq_len++;
    co->rq_next = NULL;
    co->rq_prev = s->rq_tail;
    if (s->rq_tail)
        s->rq_tail->rq_next = co;
    else
        s->rq_head = co;
    s->rq_tail = co;
}

static inline void sp__rq_remove(sp_sched *s, sp_co *co)
{
    s->rq_len--;
    if (co->rq_prev)
        co->rq_prev->rq_next = co->rq_next;
    else
        s->rq_head = co->rq_next;
    if (co->rq_next)
        co->rq_next->rq_prev = co->rq_prev;
    else
        s->rq_tail = co->rq_prev;
}

static inline sp_co *sp__rq_pop(sp_sched *s)
{
    sp_co *co = s->rq_head;
    if (co) {
        s->rq_len--;
        s->rq_head = co->rq_next;
        if (s->rq_head)
            s->rq_head->rq_prev = NULL;
        else
            s->rq_tail = NULL;
    }
    return co;
}

static inline void sp__set_state(sp_co *co, int st)
{
    /* Atomic because another worker may try to claim it (sp__claim) at
     * any time; a plain store on x86. */
    __atomic_store_n(&co->state, (uint8_t)st, __ATOMIC_RELAXED);
}

static inline int sp__co_state(const sp_co *co)
{
    return __atomic_load_n(&co->state, __ATOMIC_RELAXED);
}

/* M:N (src/mn): puts co, which this worker may run, on its queues; next:
 * as the coroutine to run right after the current one. */
void sp__mn_ready(sp_sched *s, sp_co *co, int next);

/* Makes a parked or new coroutine ready on this thread (M:N: on this
 * worker, from where idle workers may steal it). */
static inline void sp__ready(sp_sched *s, sp_co *co)
{
    sp__set_state(co, SP__CO_READY);
    if (sp__likely(!s->mn))
        sp__rq_push(s, co);
    else
        sp__mn_ready(s, co, 0);
}

/* Takes the end of co's wait for the caller.  Under M:N a wake, the
 * deadline and a cancel may race: exactly one of them gets 1 and must then
 * make co ready; the others get 0 and leave co alone.  cancel: only a wait
 * in sp__wait may be ended (not a bare sp__park). */
static inline int sp__claim(sp_co *co, int cancel)
{
    uint8_t st = __atomic_load_n(&co->state, __ATOMIC_ACQUIRE);
    for (;;) {
        if (st != SP__CO_WAITING && (cancel || st != SP__CO_PARKED))
            return 0;
        if (__atomic_compare_exchange_n(&co->state, &st, SP__CO_READY, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return 1;
    }
}

/* Hands co to another thread's scheduler `home` (its inbox), which takes
 * it off its timer heap, calls its wait_unlink first if `unlink` (a cancel
 * from another worker), and runs it there.  co is already claimed (READY)
 * and may still be leaving its stack: the sender touches none of its
 * fields the coroutine could be using.  Wakes home if it sleeps. */
void sp__send_home(sp_sched *home, sp_co *co, int unlink);
/* Moves the current coroutine to `to`, another worker's scheduler: it
 * parks and goes on there.  Returns the scheduler it then runs on. */
sp_sched *sp__move(sp_sched *s, sp_sched *to);
/* Takes in what other threads handed this one; returns how many. */
int sp__inbox_drain(sp_sched *s);
/* Wakes s's thread if it sleeps in idle or in its poll hook. */
void sp__sched_kick(sp_sched *s);

static inline int sp__canceled(const sp_co *co)
{
    return __atomic_load_n(&co->canceled, __ATOMIC_RELAXED) != 0;
}

/* Switches from the current coroutine (already marked parked, suspended or
 * ready-and-queued by the caller) to the next one.  Returns when the caller
 * runs again, with the scheduler it now runs on. */
sp_sched *sp__switch_next(sp_sched *s);
/* Switches from the current coroutine straight to `to`. */
sp_sched *sp__switch_to(sp_sched *s, sp_co *to);

/* Sets co->resumed (under its stripe lock with M:N).  On: co is entered by
 * sp_resume from s->current, which becomes its `waiter`, unless a joiner
 * waits on it (-1).  Off: it left (0). */
int sp__set_resumed(sp_sched *s, sp_co *co, int on);

/* Parks the current coroutine until someone calls sp__ready or sp__wake on
 * it (sp_cancel does not end this wait).  Only this thread may wake it, or
 * a waker holding a lock the caller released with s->post. */
static inline sp_sched *sp__park(sp_sched *s)
{
    sp__set_state(s->current, SP__CO_PARKED);
    return sp__switch_next(s);
}

/* Parks the current coroutine until sp__wake, its deadline (absolute
 * CLOCK_MONOTONIC ns; -1 none) or sp_cancel.  The caller has linked it into
 * what it waits on and set co->wait_unlink (or NULL for a plain sleep).
 * Returns 0 when woken by sp__wake, else ETIMEDOUT or ECANCELED (as a
 * positive errno), with the coroutine unlinked.  Fails at once with
 * ECANCELED if the coroutine was cancelled before.  The coroutine may come
 * back on another worker: the caller re-reads sp__sched() afterwards.
 *
 * sp__wait_lk: the same, for a caller holding lk (NULL: none) while it
 * linked the coroutine; lk is released once the coroutine is off its stack,
 * and is not held on return.  Under M:N, wait_unlink must take lk itself
 * and must do nothing for a coroutine a waker already took off its list
 * (a waker may lose the claim to a timeout that is unlinking). */
int sp__wait_lk(sp_sched *s, int64_t deadline, sp__lock *lk);
static inline int sp__wait(sp_sched *s, int64_t deadline)
{
    return sp__wait_lk(s, deadline, NULL);
}
/* Ends a wait started by sp__wait (or sp__park) with err (0, EBADF, ...):
 * takes the coroutine off the timer heap and readies it.  The caller has
 * unlinked it.  Returns 1, or 0 (M:N only) if a timeout or cancel ended the
 * wait first: co is then not the caller's to touch again.  From a worker
 * other than co's, the caller must hold (or have held, after co linked
 * itself) the lock co parked under. */
int sp__wake(sp_sched *s, sp_co *co, int err);
/* The rest of a wake once the caller owns the end of co's wait (one
 * thread, or its sp__claim won), on co's own thread: off the timer heap,
 * err recorded, ready. */
void sp__wake_claimed(sp_sched *s, sp_co *co, int err);
static inline void sp__wake_claimed_inline(sp_sched *s, sp_co *co, int err)
{
    if (co->heap_idx)
        sp__theap_remove(&s->timers, co);
    co->wait_err = err;
    co->wait_unlink = NULL;
    sp__ready(s, co);
}
/* Readies every coroutine whose deadline has passed; returns how many. */
int sp__timers_expire(sp_sched *s, int64_t now);
/* Looks at I/O and timers without blocking: called between switches so busy
 * coroutines do not starve I/O, at most once per round of the ready queue
 * and never more often than every SP__POLL_EVERY switches (a poll is a
 * system call). */
#define SP__POLL_EVERY 64
void sp__poll_now(sp_sched *s);

/* Frees a scheduler whose thread has ended (an M:N worker's, once every
 * worker has: another may kick it until then). */
void sp__sched_free(sp_sched *s);

/* Sleeps until sp__sched_kick, the deadline (absolute; -1 none) or, with
 * a poll hook, I/O (which it readies). */
void sp__sched_sleep(sp_sched *s, int64_t deadline);

/* M:N entry points of the core (src/mn).  sp__mn_next: the next coroutine
 * this worker runs without looking beyond its own queues (NULL: none).
 * sp__mn_find: the next one from anywhere, sleeping until there is one;
 * NULL once the runtime is over.  sp__mn_yield: sp_yield on a worker.
 * sp__mn_poll: the periodic look at the global queue.  sp__mn_ended: co
 * ended and is off its stack: tell its joiner, free it if detached. */
sp_co *sp__mn_next(sp_sched *s);
sp_co *sp__mn_find(sp_sched *s);
void sp__mn_yield(sp_sched *s);
void sp__mn_poll(sp_sched *s);
void sp__mn_ended(sp_sched *s, sp_co *co);

/* Ends the current coroutine with `result`. */
void sp__co_finish(sp_sched *s, void *result) __attribute__((noreturn));

/* Makes a coroutine object with its stack and context, neither queued nor
 * counted; NULL with errno set. */
sp_co *sp__co_new(sp_sched *s, sp_co_fn fn, void *arg, const sp_co_attr *attr);
/* The pieces of sp__co_new: fills a zeroed object from attr (not NULL)
 * (-EINVAL if bad); gives it its stack and context on s (-errno). */
int sp__co_init(sp_co *co, int default_kind, sp_co_fn fn, void *arg, const sp_co_attr *attr);
int sp__co_birth(sp_sched *s, sp_co *co, size_t stack_size);
/* M:N: counts a coroutine sp_spawn made on this worker and queues it. */
void sp__mn_spawned(sp_sched *s, sp_co *co);
/* sp_run with n > 1 workers (src/mn). */
int sp__mn_run(const sp_config *cfg, int n, sp_co_fn main_fn, void *arg, void **result);
/* The CPUs this process may run on (at least 1). */
int sp__ncpus(void);

/* Lifecycle pieces shared by co.c and sched.c. */
void sp__co_make_context(sp_sched *s, sp_co *co, char *base, size_t size);
void sp__co_free_object(sp_sched *s, sp_co *co);
/* A post action (sp_sched.post): releases the stack of the coroutine that
 * just ended, and under M:N publishes its end to its joiner. */
void sp__release_zombie(sp_sched *s, void *co);

static inline void sp__run_post(sp_sched *s)
{
    void (*fn)(sp_sched *, void *) = s->post;
    s->post = NULL;
    fn(s, s->post_arg);
}
/* Sets the action the next context to run on this thread performs first. */
static inline void sp__set_post(sp_sched *s, void (*fn)(sp_sched *, void *), void *arg)
{
    s->post = fn;
    s->post_arg = arg;
}
/* A post action: releases the lock arg. */
void sp__post_unlock(sp_sched *s, void *lock);
/* Maps the thread's run stack for shared-stack coroutines on first use. */
int sp__shared_stack_ensure(sp_sched *s);

#endif
