/* The mutex: an owner and a FIFO of waiters.  Unlock hands the lock to the
 * first waiter directly (it owns it before it runs), so a coroutine that
 * comes later cannot barge in ahead of one that waits: no starvation, at
 * the price of a switch per contended hand-off. */
#define _GNU_SOURCE
#include "sync/mutex.h"

#include <errno.h>

void sp_mutex_init(sp_mutex *m)
{
    m->bind = NULL;
    m->owner = NULL;
    m->wait.head = m->wait.tail = NULL;
}

int sp_mutex_lock(sp_mutex *m, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__sync_bind(&m->bind, s, "sp_mutex_lock", m);
    sp_co *me = s->current;
    if (sp__likely(!m->owner)) {
        m->owner = me;
        return 0;
    }
    int err = m->owner == me ? EDEADLK : deadline == 0 ? EAGAIN : 0;
    if (!err)
        err = sp__syncq_wait(s, &m->wait, deadline); /* 0: handed the lock */
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int sp_mutex_trylock(sp_mutex *m)
{
    sp_sched *s = sp__sched();
    sp__sync_bind(&m->bind, s, "sp_mutex_trylock", m);
    if (m->owner) {
        errno = EBUSY;
        return -1;
    }
    m->owner = s->current;
    return 0;
}

void sp__mutex_release(sp_sched *s, sp_mutex *m, const char *op)
{
    sp_co *me = s->current;
    if (sp__unlikely(m->owner != me)) {
        if (!m->owner)
            sp__fatal("%s: mutex %p is not locked (caller: coroutine %llu '%s')", op,
                      (void *)m, (unsigned long long)me->id, me->name);
        sp__fatal("%s: mutex %p is held by coroutine %llu '%s', not by the caller, "
                  "coroutine %llu '%s'", op, (void *)m,
                  (unsigned long long)m->owner->id, m->owner->name,
                  (unsigned long long)me->id, me->name);
    }
    m->owner = sp__syncq_wake_one(s, &m->wait);
}

void sp_mutex_unlock(sp_mutex *m)
{
    sp_sched *s = sp__sched();
    sp__sync_bind(&m->bind, s, "sp_mutex_unlock", m);
    sp__mutex_release(s, m, "sp_mutex_unlock");
}

void sp__mutex_relock(sp_sched *s, sp_mutex *m)
{
    sp_co *me = s->current;
    if (!m->owner) {
        m->owner = me;
        return;
    }
    /* A lock is not cancellable: park where sp_cancel cannot end the wait. */
    sp__syncq_push(&m->wait, me);
    me->wait_obj = &m->wait;
    sp__park(s);
}
