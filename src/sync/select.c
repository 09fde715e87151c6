/* sp_select: one operation out of several channel cases.
 *
 * First a pass that only looks: which cases could proceed now.  If some
 * can, one of them is picked uniformly at random (so a busy case cannot
 * starve the others) and performed without parking.  If none can, the
 * coroutine parks with one pooled node per case, each queued on its
 * channel like a plain send or receive; whichever peer reaches one of them
 * first fires it and takes all the others off their queues before it wakes
 * the coroutine (sp__chw_fire, sync_internal.h), so exactly one case
 * happens.
 *
 * M:N, Go's protocol: a waker holds only the lock of its own channel, so it
 * cannot take the other cases off their queues.
 *  - The select locks all its channels in address order (once each), so
 *    two selects over the same channels cannot deadlock, looks and
 *    performs a ready case, or queues a node per case and parks; a post
 *    action releases every lock once it is off its stack.
 *  - A waker pops one node and wakes its coroutine; exactly one claim wins
 *    (sp__wake), the winner marks its node `fired` under its channel's
 *    lock, and a loser (the select was won by another case, its deadline
 *    or a cancel) moves on to the next waiter of its channel.
 *  - The selecting coroutine, running again, takes each channel's lock in
 *    turn, removes its nodes that are still queued and finds the one that
 *    fired (none: its deadline or a cancel ended the wait, and they leave
 *    the nodes queued too).  Until then its other nodes are stale;
 *    operations skip them. */
#define _GNU_SOURCE
#include "sync/sync_internal.h"

#include <errno.h>
#include <stdlib.h>

static int case_ready(const sp_select_case *c)
{
    const sp_chan *ch = c->ch;
    if (!ch)
        return 0;
    if (ch->closed)
        return 1; /* both ops proceed: with EPIPE, or a buffered value */
    if (c->op == SP_CHAN_RECV)
        return ch->len || ch->q[SP__CHQ_SEND].head;
    return ch->len < ch->cap || ch->q[SP__CHQ_RECV].head;
}

static uint32_t rng_next(uint32_t *x)
{
    /* xorshift32: the state lives in a channel, not in a global. */
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Performs ready case i. */
static int run_case(sp_sched *s, sp_select_case *c, int i)
{
    sp_select_case *k = &c[i];
    int err = k->op == SP_CHAN_RECV ? sp__chan_try_recv(s, k->ch, k->elem)
                                    : sp__chan_try_send(s, k->ch, k->elem);
    if (err == EAGAIN)
        sp__fatal("sp_select: case %d was ready and then could not proceed", i);
    k->err = err;
    return i;
}

/* Parks with a node on every case's channel.  Returns the case that
 * proceeded, or -1 with errno. */
static int select_wait(sp_sched *s, sp_select_case *c, int n, int64_t deadline)
{
    sp_co *co = s->current;
    sp__chw *chain = NULL;
    for (int i = 0; i < n; i++) {
        if (!c[i].ch)
            continue;
        int dir = c[i].op == SP_CHAN_RECV ? SP__CHQ_RECV : SP__CHQ_SEND;
        sp__chw *w = sp__chw_get(s, c[i].ch, dir, i);
        if (!w) {
            co->wait_obj = chain;
            sp__chw_unlink(co);
            sp__chw_release_all(s, chain);
            errno = ENOMEM;
            return -1;
        }
        if (dir == SP__CHQ_SEND)
            sp__elem_copy(w->elem, c[i].elem, c[i].ch->elem_size);
        w->sibling = chain;
        chain = w;
        sp__chw_link(w);
    }
    co->wait_obj = chain;
    co->wait_unlink = sp__chw_unlink;
    int err = sp__wait(s, deadline);
    s = sp__sched();
    int got = -1;
    for (sp__chw *w = chain; w; w = w->sibling) {
        if (!w->fired)
            continue;
        got = w->idx;
        c[got].err = err;
        /* Running again: the destination is on our own, live stack; the
         * channel lives until our nodes go back. */
        if (!err && w->dir == SP__CHQ_RECV && c[got].elem)
            sp__elem_copy(c[got].elem, w->elem, w->ch->elem_size);
    }
    sp__chw_release_all(s, chain);
    if (got < 0)
        errno = err;
    return got;
}

/* ---- M:N ---- */

/* A case's channel, for the lock order. */
typedef struct sel_ord {
    sp_chan *ch;
    int i;
} sel_ord;

/* Selects over more channels than this sort a malloc'd array; most fit on
 * the stack. */
#define SEL_SMALL 16

static int ord_cmp(const void *a, const void *b)
{
    const sel_ord *x = a, *y = b;
    if (x->ch != y->ch)
        return (uintptr_t)x->ch < (uintptr_t)y->ch ? -1 : 1;
    return x->i - y->i;
}

static void ord_sort(sel_ord *o, int m)
{
    if (m > SEL_SMALL) {
        qsort(o, (size_t)m, sizeof *o, ord_cmp);
        return;
    }
    for (int k = 1; k < m; k++) {
        sel_ord x = o[k];
        int j = k;
        for (; j > 0 && ord_cmp(&o[j - 1], &x) > 0; j--)
            o[j] = o[j - 1];
        o[j] = x;
    }
}

/* Locks (or unlocks) each distinct channel of the sorted o once. */
static void lock_all(sel_ord *o, int m)
{
    for (int k = 0; k < m; k++)
        if (k == 0 || o[k].ch != o[k - 1].ch)
            sp__lock_acquire(&o[k].ch->lock);
}

static void unlock_all(sel_ord *o, int m)
{
    for (int k = 0; k < m; k++)
        if (k == 0 || o[k].ch != o[k - 1].ch)
            sp__lock_release(&o[k].ch->lock);
}

void sp__chw_post_unlock(sp_sched *s, void *chain)
{
    /* The chain is in lock order, a channel's nodes side by side.  Once a
     * lock is released the owner may run, take that channel's nodes off
     * and recycle them: so each node is read before its lock goes, and a
     * node whose lock is still held cannot have been recycled (the owner
     * visits the nodes in this same order). */
    (void)s;
    for (sp__chw *w = chain, *next; w; w = next) {
        next = w->sibling;
        if (!next || next->ch != w->ch)
            sp__lock_release(&w->ch->lock);
    }
}

/* The ready pass and the perform, with every lock held.  A queue's head
 * may be stale, so a case that looked ready may not proceed after all
 * (EAGAIN, having dropped the stale nodes): look again.  Returns the case
 * performed, or -1 when none is ready. */
static int try_ready_mn(sp_sched *s, sp_select_case *c, int n)
{
    for (;;) {
        int ready = 0, first = -1;
        for (int i = 0; i < n; i++)
            if (case_ready(&c[i]) && ready++ == 0)
                first = i;
        if (!ready)
            return -1;
        int i = first;
        if (ready > 1) {
            uint32_t pick = rng_next(&c[first].ch->rng) % (uint32_t)ready;
            for (;; i++)
                if (case_ready(&c[i]) && pick-- == 0)
                    break;
        }
        sp_select_case *k = &c[i];
        int err = k->op == SP_CHAN_RECV ? sp__chan_try_recv_mn(s, k->ch, k->elem)
                                        : sp__chan_try_send_mn(s, k->ch, k->elem);
        if (err != EAGAIN) {
            k->err = err;
            return i;
        }
    }
}

/* Queues a node per case, in lock order (o), every lock held; returns the
 * chain, or NULL with every node taken back (ENOMEM). */
static sp__chw *queue_all(sp_sched *s, sp_select_case *c, sel_ord *o, int m)
{
    sp__chw *head = NULL, **tail = &head;
    for (int k = 0; k < m; k++) {
        sp_select_case *x = &c[o[k].i];
        int dir = x->op == SP_CHAN_RECV ? SP__CHQ_RECV : SP__CHQ_SEND;
        sp__chw *w = sp__chw_get(s, x->ch, dir, o[k].i);
        if (!w) {
            for (sp__chw *v = head, *next; v; v = next) {
                next = v->sibling;
                sp__chw_remove(v);
                sp__chw_put(s, v); /* no channel is freed while we hold it */
            }
            return NULL;
        }
        if (dir == SP__CHQ_SEND)
            sp__elem_copy(w->elem, x->elem, x->ch->elem_size);
        sp__chw_link(w);
        *tail = w;
        tail = &w->sibling;
    }
    return head;
}

/* Parks on the queued chain until a case fires, the deadline or a cancel,
 * then takes every node back; returns the case that fired, or -1 with
 * errno. */
static int park_mn(sp_sched *s, sp_select_case *c, sp__chw *head, int64_t deadline)
{
    sp_co *co = s->current;
    co->wait_obj = head;
    co->wait_unlink = NULL; /* we take the nodes off ourselves, below */
    if (head)
        sp__set_post(s, sp__chw_post_unlock, head);
    int err = sp__wait_lk(s, deadline, NULL);
    s = sp__sched(); /* perhaps another worker now */
    if (head && s->post == sp__chw_post_unlock && s->post_arg == head)
        sp__run_post(s); /* failed before it parked (cancelled, ENOMEM) */
    int got = -1;
    for (sp__chw *w = head, *next; w; w = next) {
        next = w->sibling;
        sp_chan *ch = w->ch;
        sp__lock_acquire(&ch->lock);
        if (w->linked)
            sp__chw_remove(w);
        if (w->fired) {
            got = w->idx;
            c[got].err = err;
            if (!err && w->dir == SP__CHQ_RECV && c[got].elem)
                sp__elem_copy(c[got].elem, w->elem, ch->elem_size);
        }
        int dead = sp__chw_put(s, w);
        sp__lock_release(&ch->lock);
        if (dead)
            sp__chan_destroy(s, ch);
    }
    if (got < 0)
        errno = err;
    return got;
}

static int select_mn(sp_sched *s, sp_select_case *c, int n, int64_t deadline)
{
    sel_ord small[SEL_SMALL], *o = small;
    int m = 0;
    for (int i = 0; i < n; i++)
        m += c[i].ch != NULL;
    if (m > SEL_SMALL && !(o = malloc((size_t)m * sizeof *o))) {
        errno = ENOMEM;
        return -1;
    }
    m = 0;
    for (int i = 0; i < n; i++)
        if (c[i].ch)
            o[m++] = (sel_ord){c[i].ch, i};
    ord_sort(o, m);
    lock_all(o, m);
    int got = try_ready_mn(s, c, n), err = 0;
    sp__chw *head = NULL;
    if (got < 0) {
        if (deadline == 0)
            err = EAGAIN;
        else if (m && !(head = queue_all(s, c, o, m)))
            err = ENOMEM;
    }
    if (got >= 0 || err) {
        unlock_all(o, m);
        if (o != small)
            free(o);
        if (err)
            errno = err;
        return got;
    }
    if (o != small)
        free(o);
    return park_mn(s, c, head, deadline); /* releases the locks */
}

/* ---- the call ---- */

int sp_select(sp_select_case *c, int n, int64_t deadline)
{
    if (n < 0 || (n > 0 && !c)) {
        errno = EINVAL;
        return -1;
    }
    sp_sched *s = sp__sched();
    int ready = 0, first = -1;
    for (int i = 0; i < n; i++) {
        if (c[i].op != SP_CHAN_RECV && c[i].op != SP_CHAN_SEND) {
            errno = EINVAL;
            return -1;
        }
        c[i].err = 0;
        if (!c[i].ch)
            continue;
        sp__sync_bind(&c[i].ch->bind, s, "sp_select", c[i].ch);
        if (c[i].op == SP_CHAN_SEND && !c[i].elem && c[i].ch->elem_size) {
            errno = EINVAL;
            return -1;
        }
        if (!s->mn && case_ready(&c[i]) && ready++ == 0)
            first = i;
    }
    if (s->mn)
        return select_mn(s, c, n, deadline);
    if (ready == 1)
        return run_case(s, c, first);
    if (ready > 1) {
        uint32_t pick = rng_next(&c[first].ch->rng) % (uint32_t)ready;
        for (int i = first;; i++)
            if (case_ready(&c[i]) && pick-- == 0)
                return run_case(s, c, i);
    }
    if (deadline == 0) {
        errno = EAGAIN;
        return -1;
    }
    return select_wait(s, c, n, deadline);
}
