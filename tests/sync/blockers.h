/* Every blocking call of the sync layer, set up so that it must park, for
 * the deadline, cancel and storm tests: block(kind, deadline) makes the
 * call, and unlinked(kind) says whether the primitive is free of the
 * waiter afterwards (what a timeout or a cancel must leave).  Only
 * B_SEND_UNBUF can complete another kind's wait (B_RECV_UNBUF's, the
 * select's): every other mix of them stays parked. */
#ifndef SP_SYNC_BLOCKERS_H
#define SP_SYNC_BLOCKERS_H
#include "sync_test.h"

enum {
    B_RECV_UNBUF,  /* sp_chan_recv, unbuffered, nobody sending */
    B_SEND_UNBUF,  /* sp_chan_send, unbuffered, nobody receiving */
    B_RECV_EMPTY,  /* sp_chan_recv, buffered and empty */
    B_SEND_FULL,   /* sp_chan_send, buffered and full */
    B_SELECT,      /* sp_select: recv unbuffered, recv empty, send full, and a
                      disabled (NULL) case */
    B_MUTEX,       /* sp_mutex_lock, held by another coroutine */
    B_COND,        /* sp_cond_wait, nobody signals */
    B_SEM,         /* sp_sem_acquire, no unit */
    B_WG,          /* sp_wg_wait, counter 1 */
    B_COUNT
};

static const char *const b_name[B_COUNT] = {
    "recv (unbuffered)", "send (unbuffered)", "recv (buffered, empty)",
    "send (buffered, full)", "select", "mutex lock", "cond wait", "sem acquire",
    "wg wait"};

static struct {
    sp_chan *unbuf, *empty, *full;
    sp_mutex mu, cmu;
    sp_cond cv;
    sp_sem sem, release;
    sp_wg wg;
    sp_co *holder;
} B;

static void *b_hold(void *arg)
{
    sp_mutex_lock(&B.mu, -1);
    sp_sem_acquire(&B.release, -1);
    sp_mutex_unlock(&B.mu);
    return NULL;
}

/* The full channel holds 1 value (1234) in a buffer of 1. */
static void b_setup(void)
{
    B.unbuf = sp_chan_make(sizeof(int), 0);
    B.empty = sp_chan_make(sizeof(int), 2);
    B.full = sp_chan_make(sizeof(int), 1);
    int v = 1234;
    sp_chan_send(B.full, &v, -1);
    sp_mutex_init(&B.mu);
    sp_mutex_init(&B.cmu);
    sp_cond_init(&B.cv);
    sp_sem_init(&B.sem, 0);
    sp_sem_init(&B.release, 0);
    sp_wg_init(&B.wg);
    sp_wg_add(&B.wg, 1);
    B.holder = sp_spawn(b_hold, NULL, NULL);
    sp_yield(); /* the holder takes the mutex */
}

static void b_teardown(void)
{
    sp_sem_release(&B.release);
    sp_join(B.holder, NULL);
    /* No stale waiter was handed the mutex. */
    assert_int_equal(sp_mutex_trylock(&B.mu), 0);
    sp_mutex_unlock(&B.mu);
    sp_wg_done(&B.wg);
    sp_chan_free(B.unbuf);
    sp_chan_free(B.empty);
    sp_chan_free(B.full);
}

/* Makes the blocking call of `kind`; returns 0 or -errno. */
static int block(int kind, int64_t deadline)
{
    int v = 7, rc = 0;
    switch (kind) {
    case B_RECV_UNBUF: rc = sp_chan_recv(B.unbuf, &v, deadline); break;
    case B_SEND_UNBUF: rc = sp_chan_send(B.unbuf, &v, deadline); break;
    case B_RECV_EMPTY: rc = sp_chan_recv(B.empty, &v, deadline); break;
    case B_SEND_FULL: rc = sp_chan_send(B.full, &v, deadline); break;
    case B_SELECT: {
        int a, b;
        sp_select_case c[] = {{B.unbuf, SP_CHAN_RECV, &a, 0}, {NULL, SP_CHAN_SEND, &v, 0},
                              {B.empty, SP_CHAN_RECV, &b, 0}, {B.full, SP_CHAN_SEND, &v, 0}};
        rc = sp_select(c, 4, deadline) < 0 ? -1 : 0;
        break;
    }
    case B_MUTEX:
        rc = sp_mutex_lock(&B.mu, deadline);
        if (rc == 0)
            sp_mutex_unlock(&B.mu);
        break;
    case B_COND: {
        sp_mutex_lock(&B.cmu, -1);
        rc = sp_cond_wait(&B.cv, &B.cmu, deadline);
        int e = errno;
        /* Held again whatever happened: unlock must not abort. */
        sp_mutex_unlock(&B.cmu);
        errno = e;
        break;
    }
    case B_SEM: rc = sp_sem_acquire(&B.sem, deadline); break;
    case B_WG: rc = sp_wg_wait(&B.wg, deadline); break;
    }
    return rc == 0 ? 0 : -errno;
}

/* Whether nothing of a finished call of `kind` is left on its primitive,
 * and the primitive is as b_setup left it. */
static int unlinked(int kind)
{
    int v = 1, got = 0;
    switch (kind) {
    case B_RECV_UNBUF:
    case B_SEND_UNBUF:
        /* Neither a parked receiver nor a parked sender remains. */
        return sp_chan_send(B.unbuf, &v, 0) == -1 && errno == EAGAIN &&
               sp_chan_recv(B.unbuf, &v, 0) == -1 && errno == EAGAIN;
    case B_RECV_EMPTY:
        /* A stale receiver would have taken the value: it must stay buffered. */
        if (sp_chan_send(B.empty, &v, 0) != 0 || sp_chan_len(B.empty) != 1)
            return 0;
        return sp_chan_recv(B.empty, &v, 0) == 0;
    case B_SEND_FULL:
        /* Only the original value, and no parked sender refilling the slot. */
        if (sp_chan_recv(B.full, &got, 0) != 0 || got != 1234 || sp_chan_len(B.full) != 0)
            return 0;
        v = 1234;
        return sp_chan_send(B.full, &v, 0) == 0;
    case B_SELECT:
        return unlinked(B_RECV_UNBUF) && unlinked(B_RECV_EMPTY) && unlinked(B_SEND_FULL);
    case B_MUTEX: return B.mu.wait.head == NULL;
    case B_COND: return B.cv.wait.head == NULL && B.cmu.owner == NULL;
    case B_SEM: return B.sem.wait.head == NULL && B.sem.count == 0;
    case B_WG: return B.wg.wait.head == NULL && B.wg.count == 1;
    }
    return 0;
}

#endif
