/* Threads as coroutines (SP_HOOK_THREADS; SPINDLE_HOOK_THREADS=coroutines
 * for the preloaded library): pthread_create, called in a coroutine, runs
 * the thread's function as a new coroutine of the caller's thread, so a
 * thread-per-connection server keeps one OS thread for all its
 * connections.  pthread_join joins the coroutine, pthread_detach detaches
 * it, pthread_self names it, pthread_exit ends it.
 *
 * What then no longer holds (README.md says it to users):
 *  - thread-local variables (__thread, pthread_getspecific) are the one OS
 *    thread's, shared by every coroutine-thread;
 *  - no parallelism and no preemption: a coroutine-thread runs until it
 *    makes a call that parks; one that spins waiting for another starves it;
 *  - a blocking call that is not hooked (a file read, pthread_cond_wait,
 *    sem_wait, epoll_wait, stdio on a socket) blocks all of them;
 *  - pthread_mutex_lock IS hooked: inside a coroutine it tries the lock and
 *    parks between tries, so a mutex held across a parking call does not
 *    deadlock the thread.  But every coroutine-thread is the same owner to
 *    the mutex: a recursive mutex lets a second one in, an error-checking
 *    one tells it EDEADLK.  pthread_cond_wait is not hooked;
 *  - cleanup handlers and thread-specific-data destructors do not run at
 *    the end of a coroutine-thread; its attr's own stack (setstack) is not
 *    used; and it can be joined only from its own OS thread;
 *  - the pthread calls that take a thread (pthread_setname_np,
 *    pthread_kill, pthread_setaffinity_np...) act, given a coroutine-thread,
 *    on the OS thread that runs it, shared by all; pthread_getattr_np
 *    reports the coroutine's own stack; pthread_cancel makes its blocking
 *    calls fail with ECANCELED from then on (sp_cancel) but does not unwind
 *    it.
 *
 * A handle is the address of our record with its low bit set: glibc's own
 * pthread_t values are aligned addresses, so the two never meet. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

typedef struct hook_thread {
    sp_co *co;
    void *(*fn)(void *);
    void *arg;
    sp_sched *sched;
    uint8_t detached, done;
} hook_thread;

#define SP__HOOK_HANDLE_TAG ((uintptr_t)1)

static inline pthread_t to_handle(hook_thread *t)
{
    return (pthread_t)((uintptr_t)t | SP__HOOK_HANDLE_TAG);
}

static inline hook_thread *from_handle(pthread_t h)
{
    uintptr_t v = (uintptr_t)h;
    return (v & SP__HOOK_HANDLE_TAG) ? (hook_thread *)(v & ~SP__HOOK_HANDLE_TAG) : NULL;
}

/* Coroutine-threads alive in the process: pthread_self looks no further
 * while there are none. */
static _Atomic long live_threads;

/* ---- which coroutine is which thread: a per-thread open-addressing map --- */

typedef struct thread_map {
    sp_co **key;
    hook_thread **val;
    size_t cap, n; /* cap a power of two */
} thread_map;

static sp__tls thread_map tmap;

static inline size_t slot_of(const sp_co *co, size_t cap)
{
    return (size_t)(((uintptr_t)co >> 4) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static int map_grow(thread_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    sp_co **key = calloc(cap, sizeof *key);
    hook_thread **val = calloc(cap, sizeof *val);
    if (!key || !val) {
        free(key);
        free(val);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->key[i])
            continue;
        size_t j = slot_of(m->key[i], cap);
        while (key[j])
            j = (j + 1) & (cap - 1);
        key[j] = m->key[i];
        val[j] = m->val[i];
    }
    free(m->key);
    free(m->val);
    m->key = key;
    m->val = val;
    m->cap = cap;
    return 0;
}

static int map_put(thread_map *m, sp_co *co, hook_thread *t)
{
    if ((m->n + 1) * 2 > m->cap && map_grow(m) < 0)
        return -1;
    size_t i = slot_of(co, m->cap);
    while (m->key[i])
        i = (i + 1) & (m->cap - 1);
    m->key[i] = co;
    m->val[i] = t;
    m->n++;
    return 0;
}

static hook_thread *map_get(const thread_map *m, const sp_co *co)
{
    if (!m->cap)
        return NULL;
    for (size_t i = slot_of(co, m->cap); m->key[i]; i = (i + 1) & (m->cap - 1))
        if (m->key[i] == co)
            return m->val[i];
    return NULL;
}

/* Linear probing with backward-shift deletion: no tombstones to pile up
 * as threads come and go. */
static void map_del(thread_map *m, const sp_co *co)
{
    if (!m->cap)
        return;
    size_t mask = m->cap - 1, i = slot_of(co, m->cap);
    while (m->key[i] && m->key[i] != co)
        i = (i + 1) & mask;
    if (!m->key[i])
        return;
    for (size_t j = (i + 1) & mask; m->key[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m->key[j], m->cap);
        /* Move j back into the hole at i unless its home lies in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->key[i] = m->key[j];
            m->val[i] = m->val[j];
            i = j;
        }
    }
    m->key[i] = NULL;
    m->val[i] = NULL;
    m->n--;
}

/* ---- the stack a coroutine-thread gets ------------------------------------- */

static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'k' || *end == 'K')
        v <<= 10;
    else if (*end == 'm' || *end == 'M')
        v <<= 20;
    return (size_t)v;
}

/* Virtual (lazily committed) stacks of the size a real thread would get:
 * the attr's, or the process default (RLIMIT_STACK, usually 8 MiB).  Only
 * touched pages cost memory.  SPINDLE_HOOK_STACK (bytes, or with k/m)
 * overrides both. */
static size_t stack_size(const pthread_attr_t *attr)
{
    static size_t forced; /* SPINDLE_HOOK_STACK, read once; 1: not set */
    size_t f = __atomic_load_n(&forced, __ATOMIC_RELAXED);
    if (!f) {
        const char *e = getenv("SPINDLE_HOOK_STACK");
        f = e ? parse_size(e) : 0;
        f = f ? f : 1;
        __atomic_store_n(&forced, f, __ATOMIC_RELAXED);
    }
    size_t size = f > 1 ? f : 0;
    pthread_attr_t def;
    if (!size && attr)
        pthread_attr_getstacksize(attr, &size);
    if (!size && pthread_getattr_default_np(&def) == 0) {
        pthread_attr_getstacksize(&def, &size);
        pthread_attr_destroy(&def);
    }
    if (size < 64 * 1024)
        size = size ? 64 * 1024 : SP_STACK_VIRTUAL_SIZE; /* room for our own frames */
    if (size > (1u << 30))
        size = 1u << 30;
    return size;
}

/* ---- the hooks ---------------------------------------------------------------- */

static void thread_end(hook_thread *t)
{
    map_del(&tmap, t->co);
    atomic_fetch_sub_explicit(&live_threads, 1, memory_order_relaxed);
    t->done = 1;
    if (t->detached)
        free(t); /* nobody joins it; the coroutine releases itself */
}

static void *thread_main(void *arg)
{
    hook_thread *t = arg;
    void *ret = t->fn(t->arg);
    thread_end(t);
    return ret;
}

int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    sp_sched *s;
    if (!(sp__hook_mode_get() & SP__HOOK_THREADS) || !(s = sp__hook_sched()))
        return SP__REAL(pthread_create)(th, attr, fn, arg);
    int ds = PTHREAD_CREATE_JOINABLE;
    if (attr)
        pthread_attr_getdetachstate(attr, &ds);
    hook_thread *t = calloc(1, sizeof *t);
    if (!t)
        return EAGAIN;
    t->fn = fn;
    t->arg = arg;
    t->sched = s;
    t->detached = ds == PTHREAD_CREATE_DETACHED;
    /* Room in the map first, so that nothing can fail once it exists. */
    if ((tmap.n + 1) * 2 > tmap.cap && map_grow(&tmap) < 0) {
        free(t);
        return EAGAIN;
    }
    sp_co_attr ca = {.stack = SP_STACK_VIRTUAL, .stack_size = stack_size(attr),
                     .name = "pthread", .detached = t->detached};
    /* It runs once the creator parks or yields: no preemption. */
    t->co = sp_spawn(thread_main, t, &ca);
    if (!t->co) {
        int err = errno;
        free(t);
        return err == EINVAL ? EINVAL : EAGAIN;
    }
    map_put(&tmap, t->co, t);
    atomic_fetch_add_explicit(&live_threads, 1, memory_order_relaxed);
    *th = to_handle(t);
    return 0;
}

/* Joins a real thread from a coroutine without blocking the others:
 * pthread_tryjoin_np between short sleeps.  A thread takes a moment to
 * end once it is about to, so the sleeps start short. */
#define SP__HOOK_JOIN_POLL_MIN_NS 50000
#define SP__HOOK_JOIN_POLL_MAX_NS 10000000

static int join_real(sp_sched *s, pthread_t th, void **ret)
{
    int64_t pause = SP__HOOK_JOIN_POLL_MIN_NS;
    for (;;) {
        int r = pthread_tryjoin_np(th, ret);
        if (r != EBUSY)
            return r;
        int err = sp__hook_sleep_until(&s, sp_now() + pause);
        if (err)
            return SP__REAL(pthread_join)(th, ret); /* cancelled: wait the plain way */
        pause = pause * 2 > SP__HOOK_JOIN_POLL_MAX_NS ? SP__HOOK_JOIN_POLL_MAX_NS : pause * 2;
    }
}

int pthread_join(pthread_t th, void **ret)
{
    hook_thread *t = from_handle(th);
    if (!t) {
        sp_sched *s = sp__hook_sched();
        return s ? join_real(s, th, ret) : SP__REAL(pthread_join)(th, ret);
    }
    if (t->sched != sp__tls_sched || t->detached)
        return EINVAL; /* joined from another OS thread, or detached */
    void *r;
    int e = errno;
    if (sp_join(t->co, &r) != 0) {
        int err = errno; /* EDEADLK (itself), ECANCELED */
        errno = e;
        return err;
    }
    if (ret)
        *ret = r;
    free(t);
    return 0;
}

int pthread_detach(pthread_t th)
{
    hook_thread *t = from_handle(th);
    if (!t)
        return SP__REAL(pthread_detach)(th);
    if (t->detached || t->sched != sp__tls_sched)
        return EINVAL;
    if (sp_detach(t->co) != 0)
        return errno;
    if (t->done)
        free(t); /* ended already: its record was waiting for a join */
    else
        t->detached = 1;
    return 0;
}

pthread_t pthread_self(void)
{
    if (sp__likely(atomic_load_explicit(&live_threads, memory_order_relaxed) == 0))
        return SP__REAL(pthread_self)();
    sp_sched *s = sp__tls_sched;
    hook_thread *t = s ? map_get(&tmap, s->current) : NULL;
    return t ? to_handle(t) : SP__REAL(pthread_self)();
}

void pthread_exit(void *ret)
{
    sp_sched *s = sp__hook_sched();
    if (s && !(s->current->flags & SP__F_ROOT)) {
        /* A coroutine-thread, or the program's main run as a coroutine:
         * end the coroutine (unwinding a coroutine stack the way glibc
         * ends a thread would run off its top). */
        hook_thread *t = map_get(&tmap, s->current);
        if (t)
            thread_end(t);
        sp_exit(ret);
    }
    SP__REAL(pthread_exit)(ret);
    __builtin_unreachable();
}

/* ---- the other calls that take a thread ------------------------------------ */

/* A thread's timed joins: tries between short sleeps until the absolute
 * time on clk passes. */
static int timed_join(hook_thread *t, void **ret, clockid_t clk, const struct timespec *abs)
{
    if (abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000)
        return EINVAL;
    sp_sched *s = sp__hook_sched();
    int64_t pause = SP__HOOK_JOIN_POLL_MIN_NS;
    for (;;) {
        int r = pthread_tryjoin_np(to_handle(t), ret);
        if (r != EBUSY)
            return r;
        struct timespec now;
        clock_gettime(clk, &now);
        int64_t left = ((int64_t)abs->tv_sec - now.tv_sec) * 1000000000 +
                       (abs->tv_nsec - now.tv_nsec);
        if (left <= 0)
            return ETIMEDOUT;
        if (!s)
            return EINVAL; /* not from a coroutine of its own thread */
        int64_t step = left < pause ? left : pause;
        if (sp__hook_sleep_until(&s, sp_now() + step) != 0)
            return EINTR;
        pause = pause * 2 > SP__HOOK_JOIN_POLL_MAX_NS ? SP__HOOK_JOIN_POLL_MAX_NS : pause * 2;
    }
}

int pthread_tryjoin_np(pthread_t th, void **ret)
{
    hook_thread *t = from_handle(th);
    if (!t)
        return SP__REAL(pthread_tryjoin_np)(th, ret);
    if (t->sched != sp__tls_sched || t->detached)
        return EINVAL;
    if (!t->done)
        return EBUSY;
    return pthread_join(th, ret); /* ended: joins without a wait */
}

int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *abs)
{
    hook_thread *t = from_handle(th);
    if (!t)
        return SP__REAL(pthread_timedjoin_np)(th, ret, abs);
    return abs ? timed_join(t, ret, CLOCK_REALTIME, abs) : pthread_join(th, ret);
}

int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clk, const struct timespec *abs)
{
    hook_thread *t = from_handle(th);
    if (!t)
        return SP__REAL(pthread_clockjoin_np)(th, ret, clk, abs);
    if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
        return EINVAL;
    return abs ? timed_join(t, ret, clk, abs) : pthread_join(th, ret);
}

int pthread_cancel(pthread_t th)
{
    hook_thread *t = from_handle(th);
    if (!t)
        return SP__REAL(pthread_cancel)(th);
    if (t->done || t->sched != sp__tls_sched)
        return ESRCH;
    return sp_cancel(t->co) == 0 ? 0 : ESRCH;
}

/* The OS thread a handle runs on: a coroutine-thread's is ours. */
static inline pthread_t os_thread(pthread_t th)
{
    return from_handle(th) ? SP__REAL(pthread_self)() : th;
}

int pthread_kill(pthread_t th, int sig) { return SP__REAL(pthread_kill)(os_thread(th), sig); }

int pthread_sigqueue(pthread_t th, int sig, const union sigval v)
{
    return SP__REAL(pthread_sigqueue)(os_thread(th), sig, v);
}

int pthread_setname_np(pthread_t th, const char *name)
{
    return SP__REAL(pthread_setname_np)(os_thread(th), name);
}

int pthread_getname_np(pthread_t th, char *name, size_t len)
{
    return SP__REAL(pthread_getname_np)(os_thread(th), name, len);
}

int pthread_setaffinity_np(pthread_t th, size_t n, const cpu_set_t *set)
{
    return SP__REAL(pthread_setaffinity_np)(os_thread(th), n, set);
}

int pthread_getaffinity_np(pthread_t th, size_t n, cpu_set_t *set)
{
    return SP__REAL(pthread_getaffinity_np)(os_thread(th), n, set);
}

int pthread_setschedparam(pthread_t th, int policy, const struct sched_param *p)
{
    return SP__REAL(pthread_setschedparam)(os_thread(th), policy, p);
}

int pthread_getschedparam(pthread_t th, int *policy, struct sched_param *p)
{
    return SP__REAL(pthread_getschedparam)(os_thread(th), policy, p);
}

int pthread_setschedprio(pthread_t th, int prio)
{
    return SP__REAL(pthread_setschedprio)(os_thread(th), prio);
}

int pthread_getcpuclockid(pthread_t th, clockid_t *clk)
{
    return SP__REAL(pthread_getcpuclockid)(os_thread(th), clk);
}

/* A coroutine-thread's attributes describe its own stack (what programs
 * ask this for), not the OS thread's. */
int pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
    hook_thread *t = from_handle(th);
    if (!t)
        return SP__REAL(pthread_getattr_np)(th, attr);
    if (t->done || t->sched != sp__tls_sched)
        return ESRCH;
    int rc = pthread_attr_init(attr);
    if (rc == 0 && t->co->kind != SP_STACK_SHARED)
        rc = pthread_attr_setstack(attr, t->co->stack.base, t->co->stack.size);
    if (rc == 0 && t->detached)
        rc = pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
    return rc;
}

/* ---- mutexes ------------------------------------------------------------------ */

#define SP__HOOK_LOCK_PAUSE_MIN_NS 1000
#define SP__HOOK_LOCK_PAUSE_MAX_NS 1000000

/* Inside a coroutine: the holder may be another coroutine of this thread,
 * parked, which only runs if we let go of the thread.  So: try, and
 * between tries let the others run (yield when some are ready, else sleep
 * a little, doubling to 1 ms). */
int pthread_mutex_lock(pthread_mutex_t *m)
{
    sp_sched *s = sp__hook_sched();
    if (!s)
        return SP__REAL(pthread_mutex_lock)(m);
    int64_t pause = SP__HOOK_LOCK_PAUSE_MIN_NS;
    for (;;) {
        int r = pthread_mutex_trylock(m);
        if (r != EBUSY)
            return r;
        if (s->rq_head) {
            sp_yield();
            s = sp__sched();
            continue;
        }
        if (sp__hook_sleep_until(&s, sp_now() + pause) != 0)
            return SP__REAL(pthread_mutex_lock)(m); /* cancelled: the plain way */
        pause = pause * 2 > SP__HOOK_LOCK_PAUSE_MAX_NS ? SP__HOOK_LOCK_PAUSE_MAX_NS : pause * 2;
    }
}
