/* Mutex internals the condition variable needs (cond.c). */
#ifndef SP_SYNC_MUTEX_H
#define SP_SYNC_MUTEX_H

#include "sync/sync_internal.h"

/* Unlocks m for the current coroutine, handing it to the first waiter;
 * aborts, naming op, if the caller does not hold it. */
void sp__mutex_release(sp_sched *s, sp_mutex *m, const char *op);
/* Locks m again after a condition wait, whatever happens meanwhile: a
 * cancel does not interrupt it (the caller must hold the mutex when
 * sp_cond_wait returns) but stays set for the calls after. */
void sp__mutex_relock(sp_sched *s, sp_mutex *m);

#endif
