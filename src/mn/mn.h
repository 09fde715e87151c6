/* The M:N runtime (layer "mn"): its workers and shared queues.  Internal;
 * the core calls in through the sp__mn_* functions of core/internal.h. */
#ifndef SP_MN_H
#define SP_MN_H

#include <pthread.h>

#include "core/internal.h"

/* A worker's deque holds this many; more go to the global queue. */
#define SP__RING 256
/* runnext runs at most this many times in a row before the ring gets a
 * turn: two coroutines waking each other cannot starve the others. */
#define SP__RUNNEXT_STREAK 32
/* An idle worker looks this many times (4 pauses apart: work that comes
 * is seen within about 100 ns; some 50 us in all) before it sleeps. */
#define SP__SPIN_ROUNDS 512

typedef struct sp__worker {
    /* The deque: thieves CAS top, the owner moves bottom; each on a line
     * of its own, apart from the owner-only fields below. */
    int64_t top;                    /* atomic */
    char pad0_[56];
    int64_t bottom;                 /* atomic */
    char pad1_[56];
    sp_co *slot[SP__RING];          /* atomic (relaxed) */
    /* Owner only. */
    sp_co *runnext;
    uint32_t streak, tick, gticks, rng;
    int64_t live;                   /* atomic: written by the owner only */
    int index;
    struct sp__mn *mn;
    sp_sched *s;                    /* atomic: set once the thread runs */
    /* Under mn->idle_lock. */
    int idle;
    struct sp__worker *idle_next;
    pthread_t thread;
    /* Counters for SPINDLE_MN_STATS=1 (owner only; printed by sp_run). */
    uint64_t n_steals, n_global, n_sleeps, n_wakes;
} sp__worker;

typedef struct sp__mn {
    int n;                          /* workers */
    int spin;                       /* idle workers spin before sleeping */
    sp_config cfg;
    /* The global queue: overflow of full rings and sp_spawn_in. */
    sp__lock gq_lock;
    uint32_t gq_n;                  /* atomic: for a look without the lock */
    sp_co *gq_head, *gq_tail;       /* linked through rq_next */
    /* Sleeping workers. */
    sp__lock idle_lock;
    sp__worker *idle_list;
    uint32_t nidle;                 /* atomic */
    uint32_t nspinning;             /* atomic: workers looking for work to steal */
    /* Coroutines not yet ended: each worker counts what it spawned less
     * what ended on it (sp__worker.live, no shared line to bounce), this
     * what other threads spawned (under idle_lock); the sum is exact once
     * every worker is idle, which is when it is read. */
    int64_t live_foreign;
    uint64_t foreign_id;            /* atomic */
    int nthreads;                   /* atomic: worker threads created so far */
    int threads_done;               /* atomic: sp_run created all it could */
    uint32_t done;                  /* atomic */
    pthread_mutex_t end_lock;       /* sp_run's caller waits for done */
    pthread_cond_t end_cond;
    /* Descriptor owners (io/fd.c): per descriptor number, the owning
     * worker's index + 1 in bits 8 and up (0: none), and in bits 0-1 what
     * sp__fd_fresh knew (non-blocking, stream) for the next owner. */
    uint32_t *fd_owner;             /* atomic entries */
    uint32_t nfd_owner;
    sp_co_fn main_fn;
    void *main_arg, *result;
    sp__worker *w[];
} sp__mn;

#endif
