/* Wake-ups that cross threads: the futex lock, the stripe locks of
 * coroutines, a scheduler's inbox and its kick, and sp_park/sp_unpark.
 * The single-threaded scheduler uses them only when another thread hands
 * it something; under M:N they are how workers hand each other work. */
#define _GNU_SOURCE
#include "core/internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long futex(int *uaddr, int op, int val)
{
    return syscall(SYS_futex, uaddr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

/* ---- the lock ---- */

void sp__lock_slow(sp__lock *l)
{
    /* A short spin first: the holder is usually a few instructions from
     * the release, on another CPU. */
    for (int i = 0; i < 64; i++) {
        __builtin_ia32_pause();
        int z = 0;
        if (__atomic_load_n(&l->v, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&l->v, &z, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
    }
    while (__atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE) != 0)
        futex(&l->v, FUTEX_WAIT, 2);
}

void sp__unlock_slow(sp__lock *l)
{
    futex(&l->v, FUTEX_WAKE, 1);
}

/* 256 stripes: a join, a detach or an unpark holds one for a few
 * instructions, so collisions between unrelated coroutines are rare and
 * short.  Padded to a cache line each, so two workers taking neighbouring
 * stripes do not share a line. */
static struct {
    sp__lock l;
    char pad[64 - sizeof(sp__lock)];
} co_locks[256] __attribute__((aligned(64)));

sp__lock *sp__co_lock(const sp_co *co)
{
    uintptr_t a = (uintptr_t)co;
    return &co_locks[(a >> 7 ^ a >> 15) & 255].l;
}

/* ---- the inbox ---- */

void sp__sched_kick(sp_sched *s)
{
    if (__atomic_exchange_n(&s->wake_word, 1, __ATOMIC_SEQ_CST))
        return; /* kicked already, and it has not slept since */
    if (__atomic_load_n(&s->in_poll, __ATOMIC_SEQ_CST)) {
        if (s->poll_wake)
            s->poll_wake(s);
    } else {
        futex((int *)&s->wake_word, FUTEX_WAKE, 1);
    }
}

void sp__send_home(sp_sched *home, sp_co *co, int unlink)
{
    sp__lock_acquire(&home->inbox_lock);
    if (home->inbox_n == home->inbox_cap) {
        /* Grows only: bounded by the coroutines that could be sent at once. */
        uint32_t cap = home->inbox_cap ? home->inbox_cap * 2 : 64;
        sp_co **a = realloc(home->inbox, cap * sizeof *a);
        if (!a)
            sp__fatal("out of memory handing a coroutine to another thread");
        home->inbox = a;
        home->inbox_cap = cap;
    }
    /* The low bit of the entry asks for the unlink: coroutine objects are
     * 8-aligned, and the flags word is the coroutine's own. */
    home->inbox[home->inbox_n] = (sp_co *)((uintptr_t)co | (unlink ? 1u : 0u));
    __atomic_store_n(&home->inbox_n, home->inbox_n + 1, __ATOMIC_RELEASE);
    sp__lock_release(&home->inbox_lock);
    sp__sched_kick(home);
}

int sp__inbox_drain(sp_sched *s)
{
    sp_co *batch[64];
    int total = 0;
    for (;;) {
        sp__lock_acquire(&s->inbox_lock);
        uint32_t n = s->inbox_n, k = n < 64 ? n : 64;
        memcpy(batch, s->inbox + (n - k), k * sizeof *batch);
        __atomic_store_n(&s->inbox_n, n - k, __ATOMIC_RELAXED);
        sp__lock_release(&s->inbox_lock);
        if (!k)
            return total;
        for (uint32_t i = 0; i < k; i++) {
            sp_co *co = (sp_co *)((uintptr_t)batch[i] & ~(uintptr_t)1);
            if (((uintptr_t)batch[i] & 1) && co->wait_unlink)
                co->wait_unlink(co);
            if (co->heap_idx)
                sp__theap_remove(&s->timers, co);
            co->wait_unlink = NULL;
            /* Only this thread may run it now (pinned, or it came here for
             * a descriptor of this worker's): the owner-only queue. */
            sp__set_state(co, SP__CO_READY);
            sp__rq_push(s, co);
        }
        total += (int)k;
    }
}

static void post_send_home(sp_sched *s, void *co)
{
    (void)s;
    sp__send_home(((sp_co *)co)->sched, co, 0);
}

sp_sched *sp__move(sp_sched *s, sp_sched *to)
{
    sp_co *co = s->current;
    /* Queued there only once it is off this thread's stack, and run from
     * that thread's owner-only queue. */
    co->sched = to;
    sp__set_state(co, SP__CO_READY);
    sp__set_post(s, post_send_home, co);
    return sp__switch_next(s);
}

/* ---- sp_park / sp_unpark ---- */

static void park_unlink(sp_co *co)
{
    /* Nothing to take it off; sp_unpark checks the state under the lock. */
    (void)co;
}

int sp_park(int64_t deadline)
{
    sp_sched *s = sp__sched();
    sp_co *co = s->current;
    if (co->flags & (SP__F_ROOT | SP__F_SCHED)) {
        errno = EINVAL;
        return -1;
    }
    sp__lock *l = sp__co_lock(co);
    sp__lock_acquire(l);
    if (co->unpark == SP__UNPARK_KEPT) {
        co->unpark = 0;
        sp__lock_release(l);
        return 0;
    }
    /* What sp_unpark looks for, under the same lock: not wait_obj, which
     * other waits write under their own locks. */
    co->unpark = SP__UNPARK_PARKED;
    co->wait_obj = &co->unpark;
    co->wait_unlink = park_unlink;
    /* The thread it parks on must not take itself for deadlocked while
     * only another thread can end this wait. */
    sp_sched *home = s;
    __atomic_fetch_add(&home->foreign_waits, 1, __ATOMIC_RELAXED);
    int err = sp__wait_lk(s, deadline, l);
    __atomic_fetch_sub(&home->foreign_waits, 1, __ATOMIC_RELAXED);
    sp__lock_acquire(l);
    co->wait_obj = NULL;
    if (co->unpark == SP__UNPARK_PARKED)
        co->unpark = 0; /* else an unpark that lost to the deadline: kept */
    sp__lock_release(l);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int sp_unpark(sp_co *co)
{
    if (!co || co->id == 0 /* a root or a scheduler */) {
        errno = EINVAL;
        return -1;
    }
    uint8_t st = __atomic_load_n(&co->state, __ATOMIC_RELAXED);
    if (st == 0 || st == SP__CO_DONE) {
        errno = EINVAL;
        return -1;
    }
    sp__lock *l = sp__co_lock(co);
    sp__lock_acquire(l);
    if (co->unpark == SP__UNPARK_PARKED && sp__claim(co, 0)) {
        sp__lock_release(l);
        co->wait_err = 0;
        sp_sched *home = co->sched;
        if (sp__tls_sched == home)
            sp__wake_claimed(home, co, 0);
        else
            sp__send_home(home, co, 0);
        return 0;
    }
    co->unpark = SP__UNPARK_KEPT;
    sp__lock_release(l);
    return 0;
}
