/* What the sync primitives share: the thread binding's slow path and the
 * park on a FIFO of coroutines. */
#define _GNU_SOURCE
#include "sync/sync_internal.h"

void sp__sync_bind_slow(void **bind, sp_sched *s, const char *op, const void *obj)
{
    void *none = NULL;
    if (__atomic_compare_exchange_n(bind, &none, (void *)s, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        return;
    sp__fatal("%s: %p belongs to the coroutines of another thread, and coroutine "
              "%llu ('%s') of this thread used it; until the M:N scheduler "
              "(issue #4) all coroutines using one sync primitive must run on "
              "the same thread",
              op, obj, (unsigned long long)s->current->id, s->current->name);
}

static void syncq_unlink(sp_co *co)
{
    sp__syncq_remove(co->wait_obj, co);
}

int sp__syncq_park(sp_sched *s, sp__syncq *q, int64_t deadline)
{
    sp_co *co = s->current;
    co->wait_obj = q;
    co->wait_unlink = syncq_unlink;
    return sp__wait(s, deadline);
}

int sp__syncq_wait(sp_sched *s, sp__syncq *q, int64_t deadline)
{
    sp__syncq_push(q, s->current);
    return sp__syncq_park(s, q, deadline);
}
