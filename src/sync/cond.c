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
}

int sp_cond_wait(sp_cond *c, sp_mutex *m, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__sync_bind(&c->bind, s, "sp_cond_wait", c);
    sp__sync_bind(&m->bind, s, "sp_cond_wait", m);
    sp_co *me = s->current;
    if (m->owner != me)
        sp__mutex_release(s, m, "sp_cond_wait"); /* aborts with the reason */
    /* Fail before touching the mutex when the wait cannot even start. */
    int err = sp__canceled(me) ? ECANCELED : deadline == 0 ? EAGAIN : 0;
    if (!err) {
        /* Queued before the mutex is released: once the M:N scheduler lets
         * a coroutine of another worker take the mutex at once, its signal
         * must find us already waiting. */
        sp__syncq_push(&c->wait, me);
        sp__mutex_release(s, m, "sp_cond_wait");
        err = sp__syncq_park(s, &c->wait, deadline);
        s = sp__sched();
        sp__mutex_relock(s, m);
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
    sp__sync_bind(&c->bind, s, "sp_cond_signal", c);
    sp__syncq_wake_one(s, &c->wait);
}

void sp_cond_broadcast(sp_cond *c)
{
    sp_sched *s = sp__sched();
    sp__sync_bind(&c->bind, s, "sp_cond_broadcast", c);
    while (sp__syncq_wake_one(s, &c->wait))
        ;
}
