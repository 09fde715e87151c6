/* spindle/sync.h: coroutine synchronisation.  Channels of fixed-size
 * elements with select, and a mutex, a condition variable, a counting
 * semaphore and a wait group.
 *
 * Rules shared by every call here:
 *  - Waiting parks the calling coroutine, never the thread; a thread's root
 *    coroutine (plain code outside any spawned coroutine) parks the same way.
 *    Without contention a call is a few loads and stores (under M:N, and
 *    the primitive's lock): no system call, no allocation.  A channel wait
 *    takes one node (one per case for sp_select) from the channel's few
 *    spares or the thread's pool, never from malloc; the other primitives
 *    queue the coroutine object itself and never allocate, except under
 *    M:N, where a wait takes one small node from the thread's pool too (so
 *    it may also fail with ENOMEM).
 *  - Deadlines are absolute CLOCK_MONOTONIC nanoseconds; -1 means none.
 *    deadline == 0 means "do not wait": where the call would park it fails
 *    at once with EAGAIN instead (Go's `select { default: }`).  Any other
 *    deadline that passes ends the wait with ETIMEDOUT.  A call that can
 *    proceed at once does, whatever its deadline.
 *  - sp_cancel: a parked caller wakes with ECANCELED, unlinked from the
 *    primitive; a cancelled coroutine's later calls fail with ECANCELED
 *    where they would park (and still succeed where they need not).
 *  - Values in flight never live on a parked coroutine's stack: a blocked
 *    send copies its value into a pooled node, a blocked receive is handed
 *    its value in such a node and copies it out once it runs again.  So the
 *    `elem` pointers may point at locals, shared stacks included.
 *  - THREADS: a primitive serves the coroutines of one scheduler: one
 *    thread's, or one M:N runtime's (sp_run with cfg.workers > 1), whose
 *    coroutines may use it from any of its workers at once.  It belongs to
 *    the scheduler or runtime whose coroutine first uses it (not the one
 *    that made it; the *_init calls release it); a coroutine of another
 *    thread or runtime that touches it aborts the process with a message
 *    naming the misuse, rather than corrupting its wait lists.  With one
 *    worker no call takes a lock or makes an atomic read-modify-write.
 *  - API misuse (unlocking a mutex one does not hold, a negative wait-group
 *    counter, freeing a channel that coroutines wait on) aborts with a
 *    message too.
 *
 * The struct fields below are private: they are shown only so that callers
 * can embed the primitives (in a connection, in static storage) and use the
 * static initialisers. */
#ifndef SPINDLE_SYNC_H
#define SPINDLE_SYNC_H

#include <spindle.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Private: a FIFO of parked coroutines, and the lock that guards the whole
 * primitive the queue belongs to under M:N (a futex word, the core's
 * sp__lock; unused with one worker).  With one worker the FIFO links the
 * coroutine objects themselves (a coroutine waits on one thing at a time);
 * under M:N it links small pooled nodes (a coroutine whose wait a timeout
 * ended leaves its node for a while, its own links being back in a run
 * queue). */
struct sp__syncw;
typedef struct sp__syncq {
    union {
        sp_co *head;
        struct sp__syncw *whead;
    };
    union {
        sp_co *tail;
        struct sp__syncw *wtail;
    };
    int lock;
} sp__syncq;

/* ---- Channels ------------------------------------------------------------ */

typedef struct sp_chan sp_chan;

/* Makes a channel of elements of elem_size bytes (0 is allowed: signals
 * only) holding up to capacity of them; capacity 0 is unbuffered: a send
 * completes when a receiver takes the value.  Returns the channel, or NULL
 * with errno ENOMEM or EINVAL (elem_size * capacity overflows).  Does not
 * park.  The memory comes from the calling thread's pool. */
sp_chan *sp_chan_make(size_t elem_size, size_t capacity);

/* Sends the elem_size bytes at elem: hands them to a waiting receiver, or
 * queues them in the buffer, or parks until one of those can happen.
 * Returns 0, or -1 with errno EPIPE (the channel is closed, or was closed
 * while the caller waited: the value was not delivered), ETIMEDOUT,
 * ECANCELED, EAGAIN (deadline 0), ENOMEM, EINVAL (elem NULL).  May park. */
int sp_chan_send(sp_chan *ch, const void *elem, int64_t deadline);

/* Receives the oldest value into elem (NULL: drop it), parking until there
 * is one.  Returns 0, or -1 with errno EPIPE (closed, and every buffered
 * value already received), ETIMEDOUT, ECANCELED, EAGAIN (deadline 0) or
 * ENOMEM.  May park. */
int sp_chan_recv(sp_chan *ch, void *elem, int64_t deadline);

/* Closes ch: later sends fail with EPIPE; receivers drain what is buffered,
 * then get EPIPE.  Every parked sender and receiver wakes with EPIPE.
 * Returns 0, or -1 with errno EPIPE if it was already closed.  Does not
 * park. */
int sp_chan_close(sp_chan *ch);

/* Values buffered in ch now (0 for an unbuffered channel). Does not park. */
size_t sp_chan_len(const sp_chan *ch);

/* Releases ch (NULL: nothing).  Aborts if a coroutine is parked on it.
 * Coroutines that ch has already woken (handed a value, or EPIPE) but that
 * have not run yet are fine: ch may be freed right after the last send,
 * and its memory goes back once they have returned.  Does not park. */
void sp_chan_free(sp_chan *ch);

/* ---- Select -------------------------------------------------------------- */

#define SP_CHAN_RECV 1
#define SP_CHAN_SEND 2

typedef struct sp_select_case {
    sp_chan *ch; /* NULL: the case is never ready (disables it, as a nil
                    channel does in Go) */
    int op;      /* SP_CHAN_RECV or SP_CHAN_SEND */
    void *elem;  /* SEND: the value (copied); RECV: where it goes (or NULL) */
    int err;     /* out: 0, or EPIPE when the case proceeded because its
                    channel is closed (and drained, for a receive) */
} sp_select_case;

/* Performs exactly one of the n cases, the first that can proceed; when
 * several can at once, one of them chosen at random, so no case starves.
 * A closed channel's case can always proceed (with err EPIPE).  Returns the
 * index of that case, or -1 with errno ETIMEDOUT, ECANCELED, EAGAIN
 * (deadline 0 and no case ready: the "default" case), ENOMEM or EINVAL (bad
 * op, n < 0).  n == 0 (or only NULL channels) waits for the deadline or a
 * cancel only.  May park. */
int sp_select(sp_select_case *cases, int n, int64_t deadline);

/* ---- Mutex ---------------------------------------------------------------- */

typedef struct sp_mutex {
    void *bind;       /* private: the scheduler (or M:N runtime) that uses it */
    sp_co *owner;     /* private */
    sp__syncq wait;   /* private */
} sp_mutex;

#define SP_MUTEX_INIT {NULL, NULL, {{NULL}, {NULL}, 0}}

/* Initialises m unlocked (as SP_MUTEX_INIT does); m must not be in use. */
void sp_mutex_init(sp_mutex *m);

/* Locks m, parking while another coroutine holds it.  Waiters get the lock
 * in the order they came (an unlock hands it straight to the first), so
 * none starves.  Returns 0, or -1 with errno EDEADLK (the caller holds it),
 * ETIMEDOUT, ECANCELED, EAGAIN (deadline 0) or ENOMEM (M:N).  May park. */
int sp_mutex_lock(sp_mutex *m, int64_t deadline);

/* Locks m if nobody holds it.  Returns 0, or -1 with errno EBUSY (held,
 * by anyone: the caller included).  Does not park. */
int sp_mutex_trylock(sp_mutex *m);

/* Unlocks m, handing it to the first waiter if there is one.  Aborts with a
 * message if the caller does not hold it.  Does not park. */
void sp_mutex_unlock(sp_mutex *m);

/* ---- Condition variable --------------------------------------------------- */

typedef struct sp_cond {
    void *bind;       /* private */
    sp__syncq wait;   /* private */
} sp_cond;

#define SP_COND_INIT {NULL, {{NULL}, {NULL}, 0}}

/* Initialises c with no waiters (as SP_COND_INIT does); c must not be in
 * use. */
void sp_cond_init(sp_cond *c);

/* Unlocks m (which the caller must hold: else abort), parks until
 * sp_cond_signal/broadcast, the deadline or a cancel, and locks m again
 * before it returns, whatever the outcome (a cancel does not interrupt that
 * relock).  Returns 0, or -1 with errno ETIMEDOUT, ECANCELED, EAGAIN
 * (deadline 0: m is not released) or ENOMEM (M:N: m is not released either).
 * There are no spurious wake-ups, but another coroutine may change the state
 * between the signal and the relock: wait in a loop on the predicate.
 * Parks. */
int sp_cond_wait(sp_cond *c, sp_mutex *m, int64_t deadline);

/* Wakes the longest waiter / every waiter of c, if any.  Does not park. */
void sp_cond_signal(sp_cond *c);
void sp_cond_broadcast(sp_cond *c);

/* ---- Counting semaphore ---------------------------------------------------- */

typedef struct sp_sem {
    void *bind;       /* private */
    long count;       /* private */
    sp__syncq wait;   /* private */
} sp_sem;

#define SP_SEM_INIT(n) {NULL, (n), {{NULL}, {NULL}, 0}}

/* Initialises sem with n units.  Returns 0, or -1 with errno EINVAL
 * (n < 0). */
int sp_sem_init(sp_sem *sem, long n);

/* Takes one unit, parking while there is none; waiters are served in the
 * order they came.  Returns 0, or -1 with errno ETIMEDOUT, ECANCELED,
 * EAGAIN (deadline 0) or ENOMEM (M:N).  May park. */
int sp_sem_acquire(sp_sem *sem, int64_t deadline);

/* Gives one unit back: to the first waiter if there is one.  Returns 0, or
 * -1 with errno EOVERFLOW (the count would pass LONG_MAX).  Does not
 * park. */
int sp_sem_release(sp_sem *sem);

/* ---- Wait group ------------------------------------------------------------ */

typedef struct sp_wg {
    void *bind;       /* private */
    long count;       /* private */
    sp__syncq wait;   /* private */
} sp_wg;

#define SP_WG_INIT {NULL, 0, {{NULL}, {NULL}, 0}}

/* Initialises wg with a counter of 0 (as SP_WG_INIT does); wg must not be
 * in use. */
void sp_wg_init(sp_wg *wg);

/* Adds n (may be negative) to the counter; when it reaches 0 every waiter
 * wakes.  A counter that goes negative or overflows aborts with a message.
 * Does not park. */
void sp_wg_add(sp_wg *wg, long n);
/* sp_wg_add(wg, -1). */
void sp_wg_done(sp_wg *wg);

/* Parks until the counter is 0.  Returns 0, or -1 with errno ETIMEDOUT,
 * ECANCELED, EAGAIN (deadline 0) or ENOMEM (M:N).  May park. */
int sp_wg_wait(sp_wg *wg, int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
