/* The counting semaphore: a count, and a FIFO of coroutines waiting for a
 * unit.  Waiters exist only while the count is 0, and a release with
 * waiters hands its unit straight to the first of them, so a newcomer never
 * overtakes a waiter. */
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
    return 0;
}

int sp_sem_acquire(sp_sem *sem, int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp__sync_bind(&sem->bind, s, "sp_sem_acquire", sem);
    if (sp__likely(sem->count > 0)) {
        sem->count--;
        return 0;
    }
    int err = deadline == 0 ? EAGAIN : sp__syncq_wait(s, &sem->wait, deadline);
    if (err) {
        errno = err;
        return -1;
    }
    return 0; /* a release handed us its unit */
}

int sp_sem_release(sp_sem *sem)
{
    sp_sched *s = sp__sched();
    sp__sync_bind(&sem->bind, s, "sp_sem_release", sem);
    if (sp__syncq_wake_one(s, &sem->wait))
        return 0;
    if (sem->count == LONG_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    sem->count++;
    return 0;
}
