/* Time, timers, waits with deadlines, and cancellation.
 *
 * Pending deadlines live in a 4-ary min-heap keyed by absolute monotonic
 * nanoseconds, with each coroutine's slot index kept in the coroutine, so a
 * wait that ends early (I/O arrived) removes its timer in O(log n) without a
 * search.  Chosen over a timing wheel because deadlines here are exact
 * nanoseconds (a wheel rounds to its tick) and because most timers are
 * cancelled long before they fire, which a heap does as cheaply as it
 * inserts; `spindle micro --bench timers` measures insert+cancel with a
 * million pending. */
#define _GNU_SOURCE
#include "core/internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int64_t sp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sp_deadline_ms(int64_t ms)
{
    return ms < 0 ? -1 : sp_now() + ms * 1000000;
}

/* ---- the heap ---- */

static inline void place(sp__theap *h, uint32_t i, sp_co *co)
{
    h->a[i] = co;
    co->heap_idx = i;
}

static void sift_up(sp__theap *h, uint32_t i)
{
    sp_co *co = h->a[i];
    while (i > 1) {
        uint32_t parent = (i - 2) / 4 + 1;
        if (h->a[parent]->deadline <= co->deadline)
            break;
        place(h, i, h->a[parent]);
        i = parent;
    }
    place(h, i, co);
}

static void sift_down(sp__theap *h, uint32_t i)
{
    sp_co *co = h->a[i];
    for (;;) {
        uint32_t first = (i - 1) * 4 + 2, best = 0;
        if (first > h->n)
            break;
        int64_t bd = co->deadline;
        uint32_t last = first + 3 <= h->n ? first + 3 : h->n;
        for (uint32_t c = first; c <= last; c++)
            if (h->a[c]->deadline < bd) {
                bd = h->a[c]->deadline;
                best = c;
            }
        if (!best)
            break;
        place(h, i, h->a[best]);
        i = best;
    }
    place(h, i, co);
}

int sp__theap_push(sp__theap *h, sp_co *co)
{
    if (h->n + 1 >= h->cap) {
        /* Growth only: amortised, and a server's timer population is
         * bounded by its coroutines. */
        uint32_t cap = h->cap ? h->cap * 2 : 256;
        sp_co **a = realloc(h->a, (size_t)cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    h->n++;
    h->a[h->n] = co;
    sift_up(h, h->n);
    return 0;
}

void sp__theap_remove(sp__theap *h, sp_co *co)
{
    uint32_t i = co->heap_idx;
    co->heap_idx = 0;
    sp_co *last = h->a[h->n--];
    if (i > h->n)
        return; /* it was the last slot */
    h->a[i] = last;
    last->heap_idx = i;
    if (i > 1 && last->deadline < h->a[(i - 2) / 4 + 1]->deadline)
        sift_up(h, i);
    else
        sift_down(h, i);
}

/* ---- waits ----
 * Under M:N a wait can end three ways at once: a waker on another worker
 * (holding the lock the coroutine parked under), its deadline (only ever
 * on the worker whose heap holds it), and sp_cancel from anywhere.  They
 * race on sp__claim; the winner makes the coroutine ready, the losers
 * leave it alone.  Timers stay single-threaded: a winner on another worker
 * sends a coroutine with a deadline home (sp__send_home) to leave the
 * heap. */

int sp__wait_lk(sp_sched *s, int64_t deadline, sp__lock *lk)
{
    sp_co *co = s->current;
    if (sp__canceled(co))
        goto canceled;
    co->wait_err = 0;
    if (deadline >= 0) {
        co->deadline = deadline;
        if (sp__theap_push(&s->timers, co) != 0) {
            if (lk)
                sp__lock_release(lk);
            if (co->wait_unlink)
                co->wait_unlink(co);
            co->wait_unlink = NULL;
            return ENOMEM;
        }
        co->flags |= SP__F_TIMED;
    }
    if (sp__likely(!s->mn)) {
        sp__set_state(co, SP__CO_WAITING);
        if (lk) /* only sp_park's: sp_unpark comes from other threads */
            sp__set_post(s, sp__post_unlock, lk);
        s = sp__switch_next(s);
    } else {
        /* Against sp_cancel, which sets the flag and then tries to claim:
         * either it sees WAITING, or this sees the flag. */
        __atomic_store_n(&co->state, SP__CO_WAITING, __ATOMIC_SEQ_CST);
        if (sp__canceled(co)) {
            uint8_t w = SP__CO_WAITING;
            if (__atomic_compare_exchange_n(&co->state, &w, SP__CO_RUNNING, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                if (co->heap_idx)
                    sp__theap_remove(&s->timers, co);
                co->flags &= ~SP__F_TIMED;
                goto canceled;
            }
            /* The canceller claimed it: it is on its way to this inbox. */
        }
        if (lk)
            sp__set_post(s, sp__post_unlock, lk);
        s = sp__switch_next(s);
    }
    co->flags &= ~SP__F_TIMED;
    co->wait_unlink = NULL;
    return co->wait_err;

canceled:
    if (lk)
        sp__lock_release(lk);
    if (co->wait_unlink)
        co->wait_unlink(co);
    co->wait_unlink = NULL;
    return ECANCELED;
}

void sp__wake_claimed(sp_sched *s, sp_co *co, int err)
{
    sp__wake_claimed_inline(s, co, err);
}

int sp__wake(sp_sched *s, sp_co *co, int err)
{
    if (sp__likely(!s->mn)) {
        sp__wake_claimed(s, co, err);
        return 1;
    }
    if (!sp__claim(co, 0))
        return 0;
    co->wait_err = err;
    sp_sched *home = co->sched;
    if (home == s) {
        if (co->heap_idx)
            sp__theap_remove(&s->timers, co);
        co->wait_unlink = NULL;
        /* Woken by the running coroutine: runs next, on this worker, as a
         * message's receiver should (Go's runnext). */
        sp__mn_ready(s, co, s->current != s->sched_co);
    } else if (co->flags & (SP__F_TIMED | SP__F_PINNED)) {
        sp__send_home(home, co, 0);
    } else {
        co->wait_unlink = NULL;
        sp__mn_ready(s, co, 1);
    }
    return 1;
}

/* A deadline passed or the coroutine was cancelled, on its own thread:
 * unlink it from what it waits on, then wake it with err. */
static void interrupt(sp_sched *s, sp_co *co, int err)
{
    if (co->wait_unlink)
        co->wait_unlink(co);
    sp__wake_claimed(s, co, err);
}

int sp__timers_expire(sp_sched *s, int64_t now)
{
    int n = 0;
    sp_co *co;
    while ((co = sp__theap_min(&s->timers)) && co->deadline <= now) {
        if (sp__likely(!s->mn)) {
            interrupt(s, co, ETIMEDOUT);
        } else {
            sp__theap_remove(&s->timers, co);
            /* A loser here was claimed by a waker on another worker, and
             * is in this thread's inbox already or on its way. */
            if (!sp__claim(co, 1))
                continue;
            interrupt(s, co, ETIMEDOUT);
        }
        n++;
    }
    return n;
}

int sp_sleep_ns(int64_t ns)
{
    return sp_sleep_until(ns <= 0 ? sp_now() : sp_now() + ns);
}

int sp_sleep_ms(int64_t ms)
{
    return sp_sleep_ns(ms * 1000000);
}

int sp_sleep_until(int64_t deadline)
{
    sp_sched *s = sp__sched();
    if (deadline < 0) {
        errno = EINVAL;
        return -1;
    }
    s->current->wait_unlink = NULL;
    int err = sp__wait(s, deadline);
    if (err == ETIMEDOUT)
        return 0; /* for a sleep, the deadline passing is success */
    errno = err;
    return -1;
}

int sp_cancel(sp_co *co)
{
    sp_sched *s = sp__sched();
    if (!co || sp__co_state(co) == 0 || sp__co_state(co) == SP__CO_DONE ||
        co->id == 0 /* a root or a scheduler */ ||
        (s->mn ? __atomic_load_n(&co->sched, __ATOMIC_RELAXED)->mn != s->mn : co->sched != s)) {
        errno = EINVAL;
        return -1;
    }
    __atomic_store_n(&co->canceled, 1, __ATOMIC_SEQ_CST);
    /* A coroutine parked in a wait is interrupted now; one that is ready,
     * suspended, or parked in sp_resume fails its next wait. */
    if (sp__likely(!s->mn)) {
        if (co->state == SP__CO_WAITING)
            interrupt(s, co, ECANCELED);
    } else if (sp__claim(co, 1)) {
        /* What it waits on may be another worker's (a descriptor): the
         * worker it parked on unlinks it. */
        co->wait_err = ECANCELED;
        if (co->sched == s)
            interrupt(s, co, ECANCELED);
        else
            sp__send_home(co->sched, co, 1);
    }
    return 0;
}

int sp_canceled(void)
{
    return sp__canceled(sp__sched()->current);
}
