/* The condition variable: a FIFO of coroutines that released a mutex and
 * wait to be signalled.  Signal readies the first; it then queues for the
 * mutex like any locker (no wait morphing: a signalled waiter that finds the
 * mutex free takes it without a second park). */
#define _GNU_SOURCE
#include "sync/mutex.h"

#include <errno.h>

void sp_cond_init(sp_cond *c)
{
    c->bind = NULL;
    c->wait.head = c->wait.tail = NULL;
    c->wait.lock = 0;
}

/* Whether the current coroutine holds m (under m's lock with M:N: another
 * worker may be changing the owner of a mutex we do not hold). */
static int holds(sp_sched *s, int one, sp_mutex *m)
{
    sp__lock *l = sp__sync_lk(one, &m->wait);
    int mine = m->owner == s->current;
    sp__sync_unlk(l);
    return mine;
}

int sp_cond_wait(sp_cond *c, sp_mutex *m, int64_t deadline)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&c->bind, s, "sp_cond_wait", c);
    sp__sync_bind(&m->bind, s, "sp_cond_wait", m);
    sp_co *me = s->current;
    if (!holds(s, one, m))
        sp__mutex_release(s, one, m, "sp_cond_wait"); /* aborts with the reason */
    /* Fail before touching the mutex when the wait cannot even start. */
    int err = sp__canceled(me) ? ECANCELED : deadline == 0 ? EAGAIN : 0;
    if (!err) {
        /* Queued before the mutex is released, and (M:N) holding the
         * condition's lock until we are parked: a coroutine of another
         * worker may take the mutex at once, and its signal must find us
         * waiting, not about to wait (a wake of a coroutine that is not
         * parked yet would be lost). */
        sp__lock *l = sp__sync_lk(one, &c->wait);
        void *place = sp__syncq_enq(s, &c->wait, l);
        if (place) {
            sp__mutex_release(s, one, m, "sp_cond_wait");
            err = sp__syncq_park(s, &c->wait, place, deadline, l);
            s = sp__sched();
            sp__mutex_relock(s, m);
        } else {
            sp__sync_unlk(l);
            err = ENOMEM; /* M:N, no node: m was not released */
        }
    }
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

void sp_cond_signal(sp_cond *c)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&c->bind, s, "sp_cond_signal", c);
    sp__lock *l = sp__sync_lk(one, &c->wait);
    sp__syncq_wake_one(s, &c->wait, l);
    sp__sync_unlk(l);
}

void sp_cond_broadcast(sp_cond *c)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&c->bind, s, "sp_cond_broadcast", c);
    sp__lock *l = sp__sync_lk(one, &c->wait);
    while (sp__syncq_wake_one(s, &c->wait, l))
        ;
    sp__sync_unlk(l);
}
