/* The counting semaphore: a count, and a FIFO of coroutines waiting for a
 * unit.  Waiters exist only while the count is 0, and a release with
 * waiters hands its unit straight to the first of them, so a newcomer never
 * overtakes a waiter.  Under M:N a waiter that timed out or was cancelled
 * while the release popped it does not take the unit: the next one does, or
 * the count. */
#define _GNU_SOURCE
#include "sync/sync_internal.h"

#include <errno.h>
#include <limits.h>

int sp_sem_init(sp_sem *sem, long n)
{
    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    sem->bind = NULL;
    sem->count = n;
    sem->wait.head = sem->wait.tail = NULL;
    sem->wait.lock = 0;
    return 0;
}

int sp_sem_acquire(sp_sem *sem, int64_t deadline)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&sem->bind, s, "sp_sem_acquire", sem);
    sp__lock *l = sp__sync_lk(one, &sem->wait);
    if (sp__likely(sem->count > 0)) {
        sem->count--;
        sp__sync_unlk(l);
        return 0;
    }
    int err;
    if (deadline == 0) {
        sp__sync_unlk(l);
        err = EAGAIN;
    } else {
        err = sp__syncq_wait(s, &sem->wait, deadline, l);
    }
    if (err) {
        errno = err;
        return -1;
    }
    return 0; /* a release handed us its unit */
}

int sp_sem_release(sp_sem *sem)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&sem->bind, s, "sp_sem_release", sem);
    sp__lock *l = sp__sync_lk(one, &sem->wait);
    int err = 0;
    if (!sp__syncq_wake_one(s, &sem->wait, l)) {
        if (sem->count == LONG_MAX)
            err = EOVERFLOW;
        else
            sem->count++;
    }
    sp__sync_unlk(l);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
