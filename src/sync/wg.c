/* The wait group: a counter, and the coroutines waiting for it to reach 0. */
#define _GNU_SOURCE
#include "sync/sync_internal.h"

#include <errno.h>

void sp_wg_init(sp_wg *wg)
{
    wg->bind = NULL;
    wg->count = 0;
    wg->wait.head = wg->wait.tail = NULL;
    wg->wait.lock = 0;
}

void sp_wg_add(sp_wg *wg, long n)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&wg->bind, s, "sp_wg_add", wg);
    sp__lock *l = sp__sync_lk(one, &wg->wait);
    long c;
    if (__builtin_add_overflow(wg->count, n, &c))
        sp__fatal("sp_wg_add: wait group %p counter %ld%+ld overflows", (void *)wg,
                  wg->count, n);
    if (c < 0)
        sp__fatal("sp_wg_add: wait group %p counter %ld%+ld goes negative (more "
                  "sp_wg_done than were added)", (void *)wg, wg->count, n);
    wg->count = c;
    if (c == 0)
        while (sp__syncq_wake_one(s, &wg->wait, l))
            ;
    sp__sync_unlk(l);
}

void sp_wg_done(sp_wg *wg)
{
    sp_wg_add(wg, -1);
}

int sp_wg_wait(sp_wg *wg, int64_t deadline)
{
    sp_sched *s = sp__sched();
    int one = sp__sync_bind(&wg->bind, s, "sp_wg_wait", wg);
    sp__lock *l = sp__sync_lk(one, &wg->wait);
    int err = wg->count == 0 ? 0 : deadline == 0 ? EAGAIN : -1;
    if (err >= 0)
        sp__sync_unlk(l);
    else
        err = sp__syncq_wait(s, &wg->wait, deadline, l);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
