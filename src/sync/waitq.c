/* What the sync primitives share: the thread binding's slow path, and the
 * FIFO of parked coroutines (with one worker, through the coroutines; under
 * M:N, through nodes). */
#define _GNU_SOURCE
#include "sync/sync_internal.h"

int sp__sync_bind_slow(void **bind, sp_sched *s, const char *op, const void *obj)
{
    /* Under M:N two workers of the runtime may race to be first: the one
     * that loses finds its own runtime there. */
    void *who = s->mn ? (void *)s->mn : (void *)s, *cur = NULL;
    if (__atomic_compare_exchange_n(bind, &cur, who, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED) ||
        cur == who)
        return !s->mn;
    sp__fatal("%s: %p belongs to the coroutines of another thread or M:N runtime, and "
              "coroutine %llu ('%s') of this thread used it; all coroutines using one "
              "sync primitive must run on the same thread, or on the workers of the "
              "same M:N runtime",
              op, obj, (unsigned long long)s->current->id, s->current->name);
}

/* ---- one worker ---- */

static void syncq_unlink(sp_co *co)
{
    sp__syncq_remove(co->wait_obj, co);
}

int sp__syncq_park(sp_sched *s, sp__syncq *q, void *place, int64_t deadline, sp__lock *l)
{
    if (sp__unlikely(l != NULL))
        return sp__syncq_park_mn(s, q, place, deadline, l);
    sp_co *co = s->current;
    co->wait_obj = q;
    co->wait_unlink = syncq_unlink;
    return sp__wait(s, deadline);
}

/* ---- M:N ---- */

static void syncw_link(sp__syncq *q, sp__syncw *w)
{
    w->next = NULL;
    w->prev = q->wtail;
    if (q->wtail)
        q->wtail->next = w;
    else
        q->whead = w;
    q->wtail = w;
    w->linked = 1;
}

static void syncw_remove(sp__syncq *q, sp__syncw *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->whead = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->wtail = w->prev;
    w->linked = 0;
}

sp__syncw *sp__syncq_enq_mn(sp_sched *s, sp__syncq *q)
{
    size_t cap;
    sp__syncw *w = sp__mem_alloc(&s->mem, sizeof *w, &cap);
    if (w) {
        w->co = s->current;
        syncw_link(q, w);
    }
    return w;
}

int sp__syncq_park_mn(sp_sched *s, sp__syncq *q, sp__syncw *w, int64_t deadline,
                      sp__lock *l)
{
    sp_co *co = s->current;
    co->wait_obj = q;
    co->wait_unlink = NULL; /* we take w off ourselves: see sync_internal.h */
    int err = sp__wait_lk(s, deadline, l);
    if (err) {
        /* A timeout or a cancel: w is ours to take off and free (a waker
         * that popped it lost the claim and left it). */
        s = sp__sched();
        sp__lock_acquire(l);
        if (w->linked)
            syncw_remove(q, w);
        sp__lock_release(l);
        sp__mem_free(&s->mem, w, sizeof *w);
    }
    return err;
}

sp_co *sp__syncq_wake_one_mn(sp_sched *s, sp__syncq *q)
{
    sp__syncw *w;
    while ((w = q->whead) != NULL) {
        syncw_remove(q, w);
        sp_co *co = w->co;
        if (sp__wake(s, co, 0)) {
            /* Ours now: the woken coroutine never looks at w again. */
            sp__mem_free(&s->mem, w, sizeof *w);
            return co;
        }
        /* Stale: its coroutine frees it once it runs. */
    }
    return NULL;
}
