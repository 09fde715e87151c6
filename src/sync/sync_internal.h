/* The sync layer's internals: the thread binding every primitive carries,
 * the FIFO of parked coroutines the mutex, condition, semaphore and wait
 * group share, and the channel object with its waiter nodes (chan.c,
 * select.c).
 *
 * Every wait goes through sp__wait() with co->wait_unlink set, every wake
 * through sp__wake(), and each primitive keeps all of its state (counters,
 * buffer, wait lists) in one struct: so the M:N step can guard each
 * operation with the primitive's own lock and make only the wake cross
 * threads. */
#ifndef SP_SYNC_INTERNAL_H
#define SP_SYNC_INTERNAL_H

#include <errno.h>

#include <spindle/sync.h>

#include "core/internal.h"

/* ---- the thread binding ----
 * A primitive's wait lists hold coroutines of one scheduler, and nothing
 * guards them against another thread: the first scheduler to use a
 * primitive claims it, and any other aborts.  The claim is atomic so that
 * two threads racing to be first cannot both win. */

void sp__sync_bind_slow(void **bind, sp_sched *s, const char *op, const void *obj)
    __attribute__((cold));

static inline void sp__sync_bind(void **bind, sp_sched *s, const char *op, const void *obj)
{
    if (sp__unlikely(__atomic_load_n(bind, __ATOMIC_RELAXED) != (void *)s))
        sp__sync_bind_slow(bind, s, op, obj);
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

/* Parks the current coroutine at the tail of q until sp__wake (0), the
 * deadline or a cancel; returns sp__wait's result (0 or a positive errno),
 * unlinked from q in every case. */
int sp__syncq_wait(sp_sched *s, sp__syncq *q, int64_t deadline);
/* The same for a coroutine its caller has already pushed onto q. */
int sp__syncq_park(sp_sched *s, sp__syncq *q, int64_t deadline);

/* Wakes the first coroutine of q with 0 and returns it (NULL: q empty). */
static inline sp_co *sp__syncq_wake_one(sp_sched *s, sp__syncq *q)
{
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

/* wait_unlink for channel waits: takes every node of co's wait (co->wait_obj
 * and its siblings) off its queue.  The owner releases them once it runs. */
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

#endif
