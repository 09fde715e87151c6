/* The sync layer's internals: the thread binding every primitive carries,
 * the FIFO of parked coroutines the mutex, condition, semaphore and wait
 * group share, and the channel object with its waiter nodes (chan.c,
 * select.c).
 *
 * Every wait goes through sp__wait_lk(), every wake through sp__wake(), and
 * each primitive keeps all of its state (counters, buffer, wait lists) in
 * one struct guarded by one lock.
 *
 * M:N (s->mn != NULL): every operation holds the primitive's lock around
 * its state.  A waiter queues a node and parks holding the lock, and the
 * core releases it once the waiter is off its stack, so a waker that takes
 * the lock never finds a waiter that is not yet parked.  A waker pops a
 * node and wakes its coroutine; sp__wake says 0 when a timeout or sp_cancel
 * claimed that coroutine first, and the waker treats the node as stale and
 * takes the next one.  A timeout or a cancel leaves the node where it is
 * (wait_unlink is NULL): the coroutine takes its own node off, under the
 * lock, once it runs again.  A wait_unlink may not take a lock: the core
 * runs it while the switch of another coroutine of the same thread may
 * hold the lock of another primitive (its timers and inbox are looked at
 * between a park and the switch), and two such threads would deadlock.
 *
 * With one worker (s->mn == NULL) none of this runs: no lock, no atomic
 * read-modify-write, the same code as before the M:N scheduler. */
#ifndef SP_SYNC_INTERNAL_H
#define SP_SYNC_INTERNAL_H

#include <errno.h>

#include <spindle/sync.h>

#include "core/internal.h"

/* ---- the thread binding ----
 * A primitive's wait lists hold coroutines of one scheduler: the first
 * scheduler to use a primitive claims it, and any other aborts.  Under M:N
 * the claim is the runtime's (s->mn), so that every worker of it may use
 * the primitive, and a thread of another runtime still aborts.  The claim
 * is atomic so that two threads racing to be first cannot both win. */

int sp__sync_bind_slow(void **bind, sp_sched *s, const char *op, const void *obj)
    __attribute__((cold));

/* Checks that the caller's scheduler s may use the primitive whose binding
 * is *bind (claiming it on first use), and aborts naming op if not.
 * Returns 1 with one worker, 0 under M:N: the one-worker answer is the
 * compare the check makes anyway, so its hot path reads nothing more. */
static inline int sp__sync_bind(void **bind, sp_sched *s, const char *op, const void *obj)
{
    void *b = __atomic_load_n(bind, __ATOMIC_RELAXED);
    if (sp__likely(b == (void *)s))
        return 1;
    if (b != NULL && b == (void *)s->mn)
        return 0;
    return sp__sync_bind_slow(bind, s, op, obj);
}

/* ---- the primitive's lock (M:N) ---- */

_Static_assert(sizeof(sp__lock) == sizeof(int) && _Alignof(sp__lock) == _Alignof(int),
               "sp__syncq.lock is an sp__lock in an int's clothes");

static inline sp__lock *sp__syncq_lock(sp__syncq *q)
{
    return (sp__lock *)(void *)&q->lock;
}

/* Under M:N (one == 0, what sp__sync_bind said) takes the lock of the
 * primitive q belongs to and returns it; with one worker, NULL.
 * sp__sync_unlk(NULL) does nothing. */
static inline sp__lock *sp__sync_lk(int one, sp__syncq *q)
{
    if (sp__likely(one))
        return NULL;
    sp__lock *l = sp__syncq_lock(q);
    sp__lock_acquire(l);
    return l;
}

static inline void sp__sync_unlk(sp__lock *l)
{
    if (l)
        sp__lock_release(l);
}

/* ---- a FIFO of parked coroutines, through their run-queue links ----
 * A coroutine parked in sp__wait is in no run queue, so rq_next/rq_prev are
 * free to chain it into the one primitive it waits on (internal.h). */

static inline void sp__syncq_push(sp__syncq *q, sp_co *co)
{
    co->rq_next = NULL;
    co->rq_prev = q->tail;
    if (q->tail)
        q->tail->rq_next = co;
    else
        q->head = co;
    q->tail = co;
}

static inline void sp__syncq_remove(sp__syncq *q, sp_co *co)
{
    if (co->rq_prev)
        co->rq_prev->rq_next = co->rq_next;
    else
        q->head = co->rq_next;
    if (co->rq_next)
        co->rq_next->rq_prev = co->rq_prev;
    else
        q->tail = co->rq_prev;
}

static inline sp_co *sp__syncq_pop(sp__syncq *q)
{
    sp_co *co = q->head;
    if (co)
        sp__syncq_remove(q, co);
    return co;
}

/* ---- the same FIFO under M:N, through nodes ----
 * A node is the place of one wait of one coroutine in one queue, from the
 * thread's pool.  Whoever ends the wait frees it: the waker that won the
 * coroutine (sp__wake said 1), or else the coroutine itself, which may
 * find it still queued (its timeout or cancel won) or already popped by a
 * waker that lost to them. */
typedef struct sp__syncw {
    struct sp__syncw *next, *prev;
    sp_co *co;
    uint8_t linked;
} sp__syncw;

sp__syncw *sp__syncq_enq_mn(sp_sched *s, sp__syncq *q);
int sp__syncq_park_mn(sp_sched *s, sp__syncq *q, sp__syncw *w, int64_t deadline,
                      sp__lock *l);
sp_co *sp__syncq_wake_one_mn(sp_sched *s, sp__syncq *q);

/* ---- the FIFO's calls, for both ---- */

/* Queues the current coroutine at the tail of q, holding l (sp__sync_lk:
 * NULL with one worker).  Returns its place, for sp__syncq_park, or NULL
 * (M:N only: ENOMEM, l still held). */
static inline void *sp__syncq_enq(sp_sched *s, sp__syncq *q, sp__lock *l)
{
    if (sp__likely(!l)) {
        sp__syncq_push(q, s->current);
        return s->current;
    }
    return sp__syncq_enq_mn(s, q);
}

/* Parks the current coroutine, queued on q at `place` holding l, until
 * sp__wake (0), the deadline or a cancel; returns sp__wait_lk's result (0
 * or a positive errno), out of q in every case, with l released. */
int sp__syncq_park(sp_sched *s, sp__syncq *q, void *place, int64_t deadline, sp__lock *l);

/* Both: queues and parks.  Releases l in every case; ENOMEM (M:N only)
 * when there was no memory for the node. */
static inline int sp__syncq_wait(sp_sched *s, sp__syncq *q, int64_t deadline, sp__lock *l)
{
    void *place = sp__syncq_enq(s, q, l);
    if (sp__unlikely(!place)) {
        sp__sync_unlk(l);
        return ENOMEM;
    }
    return sp__syncq_park(s, q, place, deadline, l);
}

/* Wakes the first coroutine of q with 0 and returns it (NULL: q empty).
 * Under M:N (l, q's lock, held) skips stale nodes, whose coroutines a
 * timeout or a cancel claimed first: the wake goes to the next one. */
static inline sp_co *sp__syncq_wake_one(sp_sched *s, sp__syncq *q, sp__lock *l)
{
    if (sp__unlikely(l != NULL))
        return sp__syncq_wake_one_mn(s, q);
    sp_co *co = sp__syncq_pop(q);
    if (co)
        sp__wake(s, co, 0);
    return co;
}

/* ---- channels ---- */

enum { SP__CHQ_RECV = 0, SP__CHQ_SEND = 1 };

/* One case of one parked channel operation: never on a stack (a parked
 * shared-stack coroutine's frames are copied away).  The value in flight
 * lives in elem: a blocked sender's copy, or what a sender handed to a
 * blocked receiver.  A channel's nodes all have its size, so it keeps a
 * few spare ones for its next waits (no size-class lookup on the way). */
typedef struct sp__chw {
    struct sp__chw *next, *prev; /* in ch->q[dir]; next: in ch->spare */
    struct sp__chw *sibling;     /* the same wait's other cases (select) */
    sp_co *co;
    sp_chan *ch;
    int idx;                     /* the select case it stands for */
    uint8_t dir;                 /* SP__CHQ_RECV or SP__CHQ_SEND */
    uint8_t linked;              /* in ch->q[dir] */
    uint8_t fired;               /* the case that ended the wait */
    unsigned char elem[];
} sp__chw;

typedef struct sp__chq {
    sp__chw *head, *tail;
} sp__chq;

/* Spare nodes a channel keeps: enough for a ping-pong or a select over a
 * few channels, few enough that a burst of waiters does not pin memory. */
#define SP__CHAN_SPARES 4

struct sp_chan {
    void *bind;            /* the thread binding (first member) */
    sp__lock lock;         /* M:N: guards everything below */
    sp__chq q[2];          /* parked receivers, parked senders: FIFO */
    unsigned char *ring;   /* cap slots of elem_size bytes, after the struct */
    size_t elem_size, cap;
    size_t len, head;      /* values buffered, and the oldest one's slot */
    size_t alloc;          /* the pool block's size */
    size_t node_cap;       /* a node's pool block size (0: none made yet) */
    sp__chw *spare;        /* nodes kept for the next waits */
    uint32_t nspare;
    /* Nodes taken and not yet released by their owners.  A coroutine that
     * was woken still reads its node (and returns it here) when it next
     * runs, so sp_chan_free only marks the channel while out > 0 and the
     * last release frees it. */
    uint32_t out;
    uint32_t rng;          /* xorshift state: sp_select's random pick */
    uint8_t closed;
    uint8_t freed;         /* sp_chan_free came while nodes were out */
};

/* A node for case idx of the current coroutine's next wait, not yet
 * queued; NULL: ENOMEM. */
static inline sp__chw *sp__chw_get(sp_sched *s, sp_chan *ch, int dir, int idx)
{
    sp__chw *w = ch->spare;
    if (sp__likely(w != NULL)) {
        ch->spare = w->next;
        ch->nspare--;
    } else {
        w = sp__mem_alloc(&s->mem, sizeof *w + ch->elem_size, &ch->node_cap);
        if (!w)
            return NULL;
    }
    ch->out++;
    w->sibling = NULL;
    w->co = s->current;
    w->ch = ch;
    w->idx = idx;
    w->dir = (uint8_t)dir;
    w->linked = 0;
    w->fired = 0;
    return w;
}

/* Queues w at the tail of its channel's queue. */
static inline void sp__chw_link(sp__chw *w)
{
    sp__chq *q = &w->ch->q[w->dir];
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->linked = 1;
}

static inline void sp__chw_remove(sp__chw *w)
{
    sp__chq *q = &w->ch->q[w->dir];
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->linked = 0;
}

/* wait_unlink for channel waits with one worker: takes every node of co's
 * wait (co->wait_obj and its siblings) that is still queued off its queue.
 * The owner releases them once it runs.  (Under M:N the owner takes them
 * off itself.) */
void sp__chw_unlink(sp_co *co);

/* Gives the nodes of a finished wait back to their channels (or the pool).
 * May free a channel whose sp_chan_free was waiting for them. */
void sp__chw_release_slow(sp_sched *s, sp__chw *w);

static inline void sp__chw_release_all(sp_sched *s, sp__chw *w)
{
    if (!w)
        return; /* a select with no channel */
    sp_chan *ch = w->ch;
    if (sp__likely(!w->sibling && ch->nspare < SP__CHAN_SPARES && !ch->freed)) {
        /* One node, a place for it, and nobody waiting to free ch. */
        w->next = ch->spare;
        ch->spare = w;
        ch->nspare++;
        ch->out--;
        return;
    }
    sp__chw_release_slow(s, w);
}

static inline void sp__elem_copy(void *dst, const void *src, size_t n)
{
    /* The usual elements (an int, a pointer) as one move, not a call. */
    if (n == sizeof(uint64_t))
        __builtin_memcpy(dst, src, sizeof(uint64_t));
    else if (n)
        __builtin_memcpy(dst, src, n);
}

/* M:N, w->ch's lock held: gives w back to its channel's spares or to s's
 * pool.  Returns 1 when that was the last node out of a channel that
 * sp_chan_free has released: the caller destroys it once it has released
 * the lock (sp__chan_destroy). */
static inline int sp__chw_put(sp_sched *s, sp__chw *w)
{
    sp_chan *ch = w->ch;
    if (ch->nspare < SP__CHAN_SPARES) {
        w->next = ch->spare;
        ch->spare = w;
        ch->nspare++;
    } else {
        sp__mem_free(&s->mem, w, ch->node_cap);
    }
    return --ch->out == 0 && ch->freed;
}

/* Frees ch and its spare nodes into s's pool. */
void sp__chan_destroy(sp_sched *s, sp_chan *ch);

/* Ends w's wait: w is the case that proceeded (with err 0 or EPIPE); the
 * other cases of the same select leave their queues now, so that no other
 * operation completes with a coroutine that is already done waiting. */
static inline void sp__chw_fire(sp_sched *s, sp__chw *w, int err)
{
    w->fired = 1;
    if (sp__likely(!w->sibling && w->co->wait_obj == w))
        sp__chw_remove(w); /* a plain send or receive: the only node */
    else
        sp__chw_unlink(w->co);
    sp__wake(s, w->co, err);
}

/* ---- the ring ---- */

static inline unsigned char *sp__chan_slot(sp_chan *ch, size_t i)
{
    i += ch->head;
    if (i >= ch->cap)
        i -= ch->cap;
    return ch->ring + i * ch->elem_size;
}

static inline void sp__ring_put(sp_chan *ch, const void *elem)
{
    sp__elem_copy(sp__chan_slot(ch, ch->len), elem, ch->elem_size);
    ch->len++;
}

static inline void sp__ring_take(sp_chan *ch, void *elem)
{
    if (elem)
        sp__elem_copy(elem, sp__chan_slot(ch, 0), ch->elem_size);
    if (++ch->head == ch->cap)
        ch->head = 0;
    ch->len--;
}

/* ---- operations that need not park ----
 * Each returns 0 (done, waking the peer it completed with), EPIPE (closed)
 * or EAGAIN (it would have to park).  Inline: they are most of a send or a
 * receive, and sp_select performs its ready case with them too. */

static inline int sp__chan_try_send(sp_sched *s, sp_chan *ch, const void *elem)
{
    if (ch->closed)
        return EPIPE;
    sp__chw *r = ch->q[SP__CHQ_RECV].head;
    if (r) {
        sp__elem_copy(r->elem, elem, ch->elem_size);
        sp__chw_fire(s, r, 0);
        return 0;
    }
    if (ch->len < ch->cap) {
        sp__ring_put(ch, elem);
        return 0;
    }
    return EAGAIN;
}

static inline int sp__chan_try_recv(sp_sched *s, sp_chan *ch, void *elem)
{
    sp__chw *w = ch->q[SP__CHQ_SEND].head;
    if (ch->len) {
        sp__ring_take(ch, elem);
        /* A slot just freed up: the longest-waiting sender's value takes
         * it, behind every older value, so the order stays FIFO. */
        if (w) {
            sp__ring_put(ch, w->elem);
            sp__chw_fire(s, w, 0);
        }
        return 0;
    }
    if (w) {
        if (elem)
            sp__elem_copy(elem, w->elem, ch->elem_size);
        sp__chw_fire(s, w, 0);
        return 0;
    }
    return ch->closed ? EPIPE : EAGAIN;
}

/* ---- the same under M:N (ch->lock held) ----
 * A node at the head of a queue may be stale: its coroutine was claimed
 * meanwhile by a timeout, a cancel, or another case of its select (whose
 * other nodes stay queued until their owner runs and removes them).  So
 * each pops the head and wakes it; when sp__wake says 0 the node is
 * dropped (its value is not taken or given) and the next one is tried.
 * A winner's node is written (value, `fired`) after the wake, still under
 * the lock: its owner reads it only under the same lock. */

/* Takes the first waiter of ch's queue dir whose wait this call ends
 * with err (0 or EPIPE); NULL when none is left. */
static inline sp__chw *sp__chan_claim(sp_sched *s, sp_chan *ch, int dir, int err)
{
    sp__chw *w;
    while ((w = ch->q[dir].head) != NULL) {
        sp__chw_remove(w);
        if (sp__wake(s, w->co, err)) {
            w->fired = 1;
            break;
        }
    }
    return w;
}

static inline int sp__chan_try_send_mn(sp_sched *s, sp_chan *ch, const void *elem)
{
    if (ch->closed)
        return EPIPE;
    sp__chw *r = sp__chan_claim(s, ch, SP__CHQ_RECV, 0);
    if (r) {
        sp__elem_copy(r->elem, elem, ch->elem_size);
        return 0;
    }
    if (ch->len < ch->cap) {
        sp__ring_put(ch, elem);
        return 0;
    }
    return EAGAIN;
}

static inline int sp__chan_try_recv_mn(sp_sched *s, sp_chan *ch, void *elem)
{
    if (ch->len) {
        sp__ring_take(ch, elem);
        /* A slot just freed up: the longest-waiting sender's value takes
         * it, behind every older value. */
        sp__chw *w = sp__chan_claim(s, ch, SP__CHQ_SEND, 0);
        if (w)
            sp__ring_put(ch, w->elem);
        return 0;
    }
    sp__chw *w = sp__chan_claim(s, ch, SP__CHQ_SEND, 0);
    if (w) {
        if (elem)
            sp__elem_copy(elem, w->elem, ch->elem_size);
        return 0;
    }
    return ch->closed ? EPIPE : EAGAIN;
}

/* M:N select's post action (select.c): releases the locks of the channels
 * of a parked select, given its node chain (in lock order). */
void sp__chw_post_unlock(sp_sched *s, void *chain);

#endif
