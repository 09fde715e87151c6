/* sp_select: one operation out of several channel cases.
 *
 * First a pass that only looks: which cases could proceed now.  If some
 * can, one of them is picked uniformly at random (so a busy case cannot
 * starve the others) and performed without parking.  If none can, the
 * coroutine parks with one pooled node per case, each queued on its
 * channel like a plain send or receive; whichever peer reaches one of them
 * first fires it and takes all the others off their queues before it wakes
 * the coroutine (sp__chw_fire, sync_internal.h), so exactly one case
 * happens. */
#define _GNU_SOURCE
#include "sync/sync_internal.h"

#include <errno.h>

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
        if (case_ready(&c[i]) && ready++ == 0)
            first = i;
    }
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
