/* The hook library's switches: on or off, threads as coroutines, the fork
 * rule, the parks, and the public sp_hook_enable / sp_in_coroutine. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The preloaded library hooks from the start (SPINDLE_HOOK=0 turns it
 * off); a program linked with libspindle_hook.a turns it on itself. */
#if SP_HOOK_PRELOAD
#define SP__HOOK_DEFAULT SP__HOOK_ON
#else
#define SP__HOOK_DEFAULT 0
#endif

_Atomic int sp__hook_mode = SP__HOOK_DEFAULT;
sp__tls int sp__hook_depth;
_Atomic uint64_t sp__hook_parks;
static int stats_wanted;

int sp__hook_wait_fds(sp_sched **s, const sp__fdwant *w, int n, int64_t deadline)
{
    atomic_fetch_add_explicit(&sp__hook_parks, 1, memory_order_relaxed);
    int depth = sp__hook_depth;
    sp__hook_depth = 0; /* other coroutines run hooked calls meanwhile */
    int err = sp__fd_wait_many(*s, w, n, deadline);
    sp__hook_depth = depth;
    *s = sp__sched();
    return err;
}

int sp__hook_sleep_until(sp_sched **s, int64_t deadline)
{
    atomic_fetch_add_explicit(&sp__hook_parks, 1, memory_order_relaxed);
    int depth = sp__hook_depth;
    sp__hook_depth = 0;
    int rc = sp_sleep_until(deadline);
    int err = rc == 0 ? 0 : errno;
    sp__hook_depth = depth;
    *s = sp__sched();
    return err;
}

int sp_hook_enable(int flags)
{
    int keep = sp__hook_mode_get() & SP__HOOK_FORKED;
    int old = atomic_exchange_explicit(&sp__hook_mode,
                                       keep | (flags & (SP__HOOK_ON | SP__HOOK_THREADS)),
                                       memory_order_relaxed);
    return old & (SP__HOOK_ON | SP__HOOK_THREADS);
}

int sp_in_coroutine(void)
{
    sp_sched *s = sp__tls_sched;
    return s && !(s->current->flags & (SP__F_ROOT | SP__F_SCHED));
}

/* After fork() the child shares the parent's epoll instance (an open file
 * description): one epoll_ctl from the child would change what the parent
 * is told.  So the child's hooks all go straight to libc; descriptors the
 * runtime made non-blocking still behave as blocking ones (io.c). */
static void child_after_fork(void)
{
    atomic_fetch_or_explicit(&sp__hook_mode, SP__HOOK_FORKED, memory_order_relaxed);
}

/* vfork is fork here.  A vfork child shares our memory: a close() it made
 * before exec would run sp_close on the parent's scheduler and take the
 * parent's descriptor out of the parent's epoll instance.  A fork child has
 * its own memory and the rule above; POSIX lets vfork be fork.  (Not in
 * hooks.def: a C wrapper cannot call the real vfork, whose child would
 * return through the wrapper's frame on the parent's stack.) */
pid_t vfork(void)
{
    return fork();
}

/* SPINDLE_HOOK_STATS=1: one line on stderr at exit.  The preloaded
 * library is a tool (`spindle run --stats`), so this is the CLI printing;
 * it writes through the real write, unbuffered, after stdio is done. */
static void print_stats(void)
{
    char line[160];
    int n = snprintf(line, sizeof line, "spindle hook: %llu waits parked a coroutine (pid %d)\n",
                     (unsigned long long)atomic_load(&sp__hook_parks), (int)getpid());
    if (n > 0)
        (void)!SP__REAL(write)(STDERR_FILENO, line, (size_t)n);
}

static int env_is(const char *name, const char *value)
{
    const char *e = getenv(name);
    return e && !strcmp(e, value);
}

/* Early (priority 101): before the program's own constructors, which may
 * already make sockets. */
__attribute__((constructor(101))) static void hook_init(void)
{
    sp__hook_resolve_all();
    pthread_atfork(NULL, NULL, child_after_fork);
#if SP_HOOK_PRELOAD
    int mode = SP__HOOK_ON;
    if (env_is("SPINDLE_HOOK", "0") || env_is("SPINDLE_HOOK", "off"))
        mode = 0;
    if (env_is("SPINDLE_HOOK_THREADS", "coroutines"))
        mode |= SP__HOOK_THREADS;
    atomic_store(&sp__hook_mode, mode);
    stats_wanted = env_is("SPINDLE_HOOK_STATS", "1");
    if (stats_wanted)
        atexit(print_stats);
#else
    (void)stats_wanted;
    (void)print_stats;
    (void)env_is;
#endif
}
