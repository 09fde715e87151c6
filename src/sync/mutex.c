/* The mutex: an owner and a FIFO of waiters.  Unlock hands the lock to the
 * first waiter directly (it owns it before it runs), so a coroutine that
 * comes later cannot barge in ahead of one that waits: no starvation, at
 * the price of a switch per contended hand-off.  Under M:N the owner and
 * the queue live under the queue's lock, and a hand-off skips a waiter
 * whose timeout or cancel won the race (sp__syncq_wake_one). */
#define _GNU_SOURCE
#include "sync/mutex.h"

#include <errno.h>

void sp_mutex_init(sp_mutex *m)
{
    m->bind = NULL;
    m->owner = NULL;
    m->wait.head = m->wait.tail = NULL;
    m->wait.lock = 0;
}

int sp_mutex_lock(sp_mutex *m, int64_t deadline)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&m->bind, s, "sp_mutex_lock", m);
    sp_co *me = s->current;
    sp__lock *l = sp__sync_lk(one, &m->wait);
    if (sp__likely(!m->owner)) {
        m->owner = me;
        sp__sync_unlk(l);
        return 0;
    }
    int err = m->owner == me ? EDEADLK : deadline == 0 ? EAGAIN : 0;
    if (!err)
        err = sp__syncq_wait(s, &m->wait, deadline, l); /* 0: handed the lock */
    else
        sp__sync_unlk(l);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int sp_mutex_trylock(sp_mutex *m)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&m->bind, s, "sp_mutex_trylock", m);
    sp__lock *l = sp__sync_lk(one, &m->wait);
    int busy = m->owner != NULL;
    if (!busy)
        m->owner = s->current;
    sp__sync_unlk(l);
    if (busy) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}

void sp__mutex_release(sp_sched *s, int one, sp_mutex *m, const char *op)
{
    sp_co *me = s->current;
    sp__lock *l = sp__sync_lk(one, &m->wait);
    if (sp__unlikely(m->owner != me)) {
        if (!m->owner)
            sp__fatal("%s: mutex %p is not locked (caller: coroutine %llu '%s')", op,
                      (void *)m, (unsigned long long)me->id, me->name);
        sp__fatal("%s: mutex %p is held by coroutine %llu '%s', not by the caller, "
                  "coroutine %llu '%s'", op, (void *)m,
                  (unsigned long long)m->owner->id, m->owner->name,
                  (unsigned long long)me->id, me->name);
    }
    m->owner = sp__syncq_wake_one(s, &m->wait, l);
    sp__sync_unlk(l);
}

void sp_mutex_unlock(sp_mutex *m)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&m->bind, s, "sp_mutex_unlock", m);
    sp__mutex_release(s, one, m, "sp_mutex_unlock");
}

void sp__mutex_relock(sp_sched *s, sp_mutex *m)
{
    sp_co *me = s->current;
    sp__lock *l = sp__sync_lk(!s->mn, &m->wait);
    if (!m->owner) {
        m->owner = me;
        sp__sync_unlk(l);
        return;
    }
    /* A lock is not cancellable: park where sp_cancel cannot end the wait
     * (PARKED, not WAITING), with no deadline and nothing to unlink: only
     * an unlock ends it, and (M:N) frees our node.  Under M:N the switch
     * releases the mutex's lock once we are off our stack, as sp__wait_lk
     * does. */
    if (!sp__syncq_enq(s, &m->wait, l))
        sp__fatal("out of memory queueing coroutine %llu for mutex %p after a condition "
                  "wait", (unsigned long long)me->id, (void *)m);
    me->wait_obj = &m->wait;
    if (l)
        sp__set_post(s, sp__post_unlock, l);
    sp__park(s);
}
