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

/* ---- coroutine ---- */

enum {
    SP__CO_READY = 1,  /* in a run queue */
    SP__CO_RUNNING,
    SP__CO_PARKED,     /* waiting for something that will sp__ready it */
    SP__CO_SUSPENDED,  /* sp_suspend / attr.suspended: only sp_resume wakes */
    SP__CO_DONE,
};

enum {
    SP__F_DETACHED = 1 << 0,
    SP__F_JOINING = 1 << 1,   /* a joiner waits or has joined */
    SP__F_FRESH = 1 << 2,     /* shared stack: context not yet made */
    SP__F_CANARY = 1 << 3,    /* unguarded stack: check the canary on suspend */
    SP__F_ROOT = 1 << 4,      /* the thread's own stack */
    SP__F_RESUMED = 1 << 5,   /* entered by sp_resume: `waiter` is the resumer */
    SP__F_SCHED = 1 << 6,     /* the scheduler's own context */
    SP__F_CANCELED = 1 << 7,  /* sp_cancel: every blocking call fails */
    SP__F_WAITING = 1 << 8,   /* parked in sp__wait: a timeout or cancel ends it */
};

/* How a wait ended (sp_co.wait_err): 0 when what it waited for happened. */

struct sp_sched;

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
    uint8_t state, kind;
    uint16_t flags;
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

/* ---- scheduler ---- */

struct sp_sched;
/* The layer above (poll/io) plugs in here: waits up to timeout_ns (-1: no
 * limit, 0: just look) for I/O and wake-ups from other threads, readying
 * the coroutines they concern.  Returns how many it readied, or -errno. */
typedef int (*sp__poll_hook)(struct sp_sched *s, int64_t timeout_ns);

typedef struct sp_sched {
    sp_co *current;
    sp_co *rq_head, *rq_tail;  /* FIFO of ready coroutines */
    sp_co *pending;            /* what the scheduler context runs next */
    sp_co *zombie;             /* ended; its stack is released once off it */
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
    sp_config cfg;
    uint64_t next_id, id_step;
    uint64_t live;             /* spawned coroutines not yet ended */
    sp__stack shared_stack;    /* the run stack of shared-stack coroutines */
    sp__stack_pool stacks;
    sp__mem mem;
    void *thread_stack_lo;     /* the root's stack, for sanitizer annotations */
    size_t thread_stack_size;
    sp_co root;
} sp_sched;

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

/* Makes a parked or new coroutine of this thread ready. */
static inline void sp__ready(sp_sched *s, sp_co *co)
{
    co->state = SP__CO_READY;
    sp__rq_push(s, co);
}

/* Switches from the current coroutine (already marked parked, suspended or
 * ready-and-queued by the caller) to the next one.  Returns when the caller
 * runs again, with the scheduler it now runs on. */
sp_sched *sp__switch_next(sp_sched *s);
/* Switches from the current coroutine straight to `to`. */
sp_sched *sp__switch_to(sp_sched *s, sp_co *to);

/* Parks the current coroutine until someone calls sp__ready on it. */
static inline sp_sched *sp__park(sp_sched *s)
{
    s->current->state = SP__CO_PARKED;
    return sp__switch_next(s);
}

/* Parks the current coroutine until sp__wake, its deadline (absolute
 * CLOCK_MONOTONIC ns; -1 none) or sp_cancel.  The caller has linked it into
 * what it waits on and set co->wait_unlink (or NULL for a plain sleep).
 * Returns 0 when woken by sp__wake, else ETIMEDOUT or ECANCELED (as a
 * positive errno), with the coroutine unlinked.  Fails at once with
 * ECANCELED if the coroutine was cancelled before. */
int sp__wait(sp_sched *s, int64_t deadline);
/* Ends a wait started by sp__wait with err (0, EBADF, ...): takes the
 * coroutine off the timer heap and readies it.  The caller has unlinked it. */
void sp__wake(sp_sched *s, sp_co *co, int err);
/* Readies every coroutine whose deadline has passed; returns how many. */
int sp__timers_expire(sp_sched *s, int64_t now);
/* Looks at I/O and timers without blocking: called between switches so busy
 * coroutines do not starve I/O, at most once per round of the ready queue
 * and never more often than every SP__POLL_EVERY switches (a poll is a
 * system call). */
#define SP__POLL_EVERY 64
void sp__poll_now(sp_sched *s);

/* Ends the current coroutine with `result`. */
void sp__co_finish(sp_sched *s, void *result) __attribute__((noreturn));

/* Lifecycle pieces shared by co.c and sched.c. */
void sp__co_make_context(sp_sched *s, sp_co *co, char *base, size_t size);
void sp__co_free_object(sp_sched *s, sp_co *co);
/* Releases the stack of the coroutine that ended last (s->zombie); called by
 * whichever context runs right after it. */
void sp__release_zombie(sp_sched *s);
/* Maps the thread's run stack for shared-stack coroutines on first use. */
int sp__shared_stack_ensure(sp_sched *s);

#endif
