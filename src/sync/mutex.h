/* Mutex internals the condition variable needs (cond.c). */
#ifndef SP_SYNC_MUTEX_H
#define SP_SYNC_MUTEX_H

#include "sync/sync_internal.h"

/* Unlocks m for the current coroutine, handing it to the first waiter;
 * aborts, naming op, if the caller does not hold it.  one: what
 * sp__sync_bind said.  Takes m's lock under M:N (callers may hold a
 * condition's lock, never the other way round). */
void sp__mutex_release(sp_sched *s, int one, sp_mutex *m, const char *op);
/* Locks m again after a condition wait, whatever happens meanwhile: a
 * cancel does not interrupt it (the caller must hold the mutex when
 * sp_cond_wait returns) but stays set for the calls after.  s is the
 * scheduler the caller runs on now. */
void sp__mutex_relock(sp_sched *s, sp_mutex *m);

#endif
