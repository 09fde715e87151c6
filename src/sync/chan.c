/* Channels: a ring buffer of fixed-size values and two FIFOs of parked
 * operations, receivers and senders (the inline fast paths are in
 * sync_internal.h).
 *
 * Invariants (one thread touches a channel, so they hold between any two
 * statements that do not call out):
 *  - receivers wait only while the buffer is empty;
 *  - senders wait only while the buffer is full (always, when unbuffered);
 *  - so at most one of the two queues is non-empty, and an operation that
 *    finds the other side waiting completes with it at once.
 *
 * A value never travels through a parked coroutine's stack: a sender that
 * parks copies its value into its node first, and a sender that finds a
 * parked receiver writes into that receiver's node, which the receiver
 * copies into its destination once it runs.  The copy costs one move for
 * an 8-byte element and keeps shared stacks correct.
 *
 * M:N: every operation holds ch->lock.  The invariants above then hold
 * between operations for the coroutines still waiting, but a queue may
 * also hold stale nodes, whose coroutines a timeout, a cancel or another
 * select case claimed first; operations skip them (sp__chan_claim) and
 * their owners take them off when they run again. */
#define _GNU_SOURCE
#include "sync/sync_internal.h"

#include <string.h>

/* ---- waiter nodes ---- */

void sp__chw_unlink(sp_co *co)
{
    for (sp__chw *w = co->wait_obj; w; w = w->sibling)
        if (w->linked)
            sp__chw_remove(w);
}

void sp__chan_destroy(sp_sched *s, sp_chan *ch)
{
    while (ch->spare) {
        sp__chw *w = ch->spare;
        ch->spare = w->next;
        sp__mem_free(&s->mem, w, ch->node_cap);
    }
    sp__mem_free(&s->mem, ch, ch->alloc);
}

void sp__chw_release_slow(sp_sched *s, sp__chw *w)
{
    while (w) {
        sp__chw *next = w->sibling; /* before w can be freed */
        sp_chan *ch = w->ch;
        if (ch->nspare < SP__CHAN_SPARES) {
            w->next = ch->spare;
            ch->spare = w;
            ch->nspare++;
        } else {
            sp__mem_free(&s->mem, w, ch->node_cap);
        }
        if (--ch->out == 0 && ch->freed)
            sp__chan_destroy(s, ch);
        w = next;
    }
}

/* ---- making one ---- */

sp_chan *sp_chan_make(size_t elem_size, size_t capacity)
{
    sp_sched *s = sp__sched();
    size_t ring;
    if (__builtin_mul_overflow(elem_size, capacity, &ring) ||
        ring > SIZE_MAX / 2 - sizeof(sp_chan) || elem_size > SIZE_MAX / 2) {
        errno = EINVAL;
        return NULL;
    }
    size_t alloc;
    sp_chan *ch = sp__mem_alloc(&s->mem, sizeof *ch + ring, &alloc);
    if (!ch)
        return NULL;
    memset(ch, 0, sizeof *ch);
    ch->ring = (unsigned char *)(ch + 1);
    ch->elem_size = elem_size;
    ch->cap = capacity;
    ch->alloc = alloc;
    /* Any non-zero seed: select only needs the picks spread out. */
    ch->rng = (uint32_t)((uintptr_t)ch >> 4) | 1u;
    return ch;
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* Parks the current coroutine on ch as a sender (src copied in) or a
 * receiver; on success a receiver's value is copied out to dst.  Inlined
 * into its two callers: a ping-pong parks on every message. */
static inline __attribute__((always_inline)) int chan_wait(sp_sched *s, sp_chan *ch, int dir, const void *src, void *dst,
                     int64_t deadline)
{
    sp__chw *w = sp__chw_get(s, ch, dir, 0);
    if (!w)
        return ENOMEM;
    if (dir == SP__CHQ_SEND)
        sp__elem_copy(w->elem, src, ch->elem_size);
    sp__chw_link(w);
    sp_co *co = s->current;
    co->wait_obj = w;
    co->wait_unlink = sp__chw_unlink;
    int err = sp__wait(s, deadline);
    s = sp__sched();
    /* Running again: the destination is on our own, live stack; ch is
     * alive until our node goes back. */
    if (!err && dir == SP__CHQ_RECV && dst)
        sp__elem_copy(dst, w->elem, ch->elem_size);
    sp__chw_release_all(s, w);
    return err;
}

/* ---- M:N ---- */

/* chan_wait for M:N, with ch->lock held (released on return).  Once it
 * runs again it takes its node off (if a timeout or a cancel left it
 * queued) and gives it back, under the lock: the spares are shared, and a
 * waker that won it may still be writing the node until it releases the
 * lock. */
static int chan_wait_mn(sp_sched *s, sp_chan *ch, int dir, const void *src, void *dst,
                        int64_t deadline)
{
    sp__chw *w = sp__chw_get(s, ch, dir, 0);
    if (!w) {
        sp__lock_release(&ch->lock);
        return ENOMEM;
    }
    if (dir == SP__CHQ_SEND)
        sp__elem_copy(w->elem, src, ch->elem_size);
    sp__chw_link(w);
    sp_co *co = s->current;
    co->wait_obj = w;
    co->wait_unlink = NULL; /* we take w off ourselves: see sync_internal.h */
    int err = sp__wait_lk(s, deadline, &ch->lock);
    s = sp__sched(); /* perhaps another worker now */
    sp__lock_acquire(&ch->lock);
    if (w->linked)
        sp__chw_remove(w); /* a timeout or cancel won: still queued */
    if (!err && dir == SP__CHQ_RECV && dst)
        sp__elem_copy(dst, w->elem, ch->elem_size);
    int dead = sp__chw_put(s, w);
    sp__lock_release(&ch->lock);
    if (dead)
        sp__chan_destroy(s, ch);
    return err;
}

static int chan_send_mn(sp_sched *s, sp_chan *ch, const void *elem, int64_t deadline)
{
    sp__lock_acquire(&ch->lock);
    int err = sp__chan_try_send_mn(s, ch, elem);
    if (err == EAGAIN && deadline != 0)
        return chan_wait_mn(s, ch, SP__CHQ_SEND, elem, NULL, deadline);
    sp__lock_release(&ch->lock);
    return err;
}

static int chan_recv_mn(sp_sched *s, sp_chan *ch, void *elem, int64_t deadline)
{
    sp__lock_acquire(&ch->lock);
    int err = sp__chan_try_recv_mn(s, ch, elem);
    if (err == EAGAIN && deadline != 0)
        return chan_wait_mn(s, ch, SP__CHQ_RECV, NULL, elem, deadline);
    sp__lock_release(&ch->lock);
    return err;
}

static int chan_close_mn(sp_sched *s, sp_chan *ch)
{
    sp__lock_acquire(&ch->lock);
    int err = ch->closed ? EPIPE : 0;
    if (!err) {
        ch->closed = 1;
        for (int dir = 0; dir < 2; dir++)
            while (sp__chan_claim(s, ch, dir, EPIPE))
                ;
    }
    sp__lock_release(&ch->lock);
    return err;
}

/* sp_chan_free under M:N: a node still queued is an error only if its
 * coroutine still waits; a stale one (its select fired elsewhere, or its
 * timeout or cancel is on the way) leaves now, and its owner, which has
 * yet to run and release it, keeps the channel alive (ch->out). */
static void chan_free_mn(sp_sched *s, sp_chan *ch)
{
    sp__lock_acquire(&ch->lock);
    for (int dir = 0; dir < 2; dir++)
        for (sp__chw *w = ch->q[dir].head, *next; w; w = next) {
            next = w->next;
            if (__atomic_load_n(&w->co->state, __ATOMIC_ACQUIRE) == SP__CO_WAITING)
                sp__fatal("sp_chan_free: coroutine %llu is still parked on channel %p",
                          (unsigned long long)w->co->id, (void *)ch);
            sp__chw_remove(w);
        }
    if (ch->freed)
        sp__fatal("sp_chan_free: channel %p freed twice", (void *)ch);
    int out = ch->out != 0;
    if (out)
        ch->freed = 1; /* the last node back frees it (sp__chw_put) */
    sp__lock_release(&ch->lock);
    if (!out)
        sp__chan_destroy(s, ch);
}

/* ---- the public calls ---- */

int sp_chan_send(sp_chan *ch, const void *elem, int64_t deadline)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&ch->bind, s, "sp_chan_send", ch);
    if (sp__unlikely(!elem && ch->elem_size))
        return fail(EINVAL);
    if (sp__unlikely(!one)) {
        int err = chan_send_mn(s, ch, elem, deadline);
        return err ? fail(err) : 0;
    }
    int err = sp__chan_try_send(s, ch, elem);
    if (sp__likely(err != EAGAIN))
        return err ? fail(err) : 0;
    if (deadline == 0)
        return fail(EAGAIN);
    err = chan_wait(s, ch, SP__CHQ_SEND, elem, NULL, deadline);
    return err ? fail(err) : 0;
}

int sp_chan_recv(sp_chan *ch, void *elem, int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (sp__unlikely(!sp__sync_bind(&ch->bind, s, "sp_chan_recv", ch))) {
        int err = chan_recv_mn(s, ch, elem, deadline);
        return err ? fail(err) : 0;
    }
    int err = sp__chan_try_recv(s, ch, elem);
    if (sp__likely(err != EAGAIN))
        return err ? fail(err) : 0;
    if (deadline == 0)
        return fail(EAGAIN);
    err = chan_wait(s, ch, SP__CHQ_RECV, NULL, elem, deadline);
    return err ? fail(err) : 0;
}

int sp_chan_close(sp_chan *ch)
{
    sp_sched *s = sp__sched();
    if (!sp__sync_bind(&ch->bind, s, "sp_chan_close", ch)) {
        int err = chan_close_mn(s, ch);
        return err ? fail(err) : 0;
    }
    if (ch->closed)
        return fail(EPIPE);
    ch->closed = 1;
    /* Firing takes each head off (and its select siblings, which may sit
     * further down the same queue), so the loops re-read the head. */
    for (int dir = 0; dir < 2; dir++)
        while (ch->q[dir].head)
            sp__chw_fire(s, ch->q[dir].head, EPIPE);
    return 0;
}

size_t sp_chan_len(const sp_chan *ch)
{
    sp_sched *s = sp__tls_sched;
    if (!s || !s->mn)
        return ch->len;
    sp__lock *l = (sp__lock *)&ch->lock; /* taken and released: ch is unchanged */
    sp__lock_acquire(l);
    size_t n = ch->len;
    sp__lock_release(l);
    return n;
}

void sp_chan_free(sp_chan *ch)
{
    if (!ch)
        return;
    sp_sched *s = sp__sched();
    if (!sp__sync_bind(&ch->bind, s, "sp_chan_free", ch)) {
        chan_free_mn(s, ch);
        return;
    }
    if (ch->q[0].head || ch->q[1].head)
        sp__fatal("sp_chan_free: coroutine %llu is still parked on channel %p",
                  (unsigned long long)(ch->q[0].head ? ch->q[0].head : ch->q[1].head)->co->id,
                  (void *)ch);
    if (ch->freed)
        sp__fatal("sp_chan_free: channel %p freed twice", (void *)ch);
    if (ch->out) {
        /* Woken coroutines have yet to copy their values out of their
         * nodes: the last of them frees the channel. */
        ch->freed = 1;
        return;
    }
    sp__chan_destroy(s, ch);
}
