/* The hook library (layer "hook"): what its files share.  Internal.
 *
 * How a hooked call decides (see README.md for the whole story):
 *  - sp__hook_sched() says whether the caller runs where a blocking call
 *    may park: hooks on, a scheduler on this thread, and the running
 *    context a spawned coroutine (or a root whose thread has other live
 *    coroutines).  Otherwise the call goes straight to libc.
 *  - Per descriptor, the process-wide table below (fdtab.c) says whether
 *    the descriptor is one we may park on (a socket, pipe or eventfd made
 *    through a hooked call, or a socket adopted after fstat), whether the
 *    program asked for O_NONBLOCK, whether the runtime set O_NONBLOCK
 *    behind its back, and its SO_RCVTIMEO / SO_SNDTIMEO. */
#ifndef SP_HOOK_H
#define SP_HOOK_H

/* We define read, recv, poll... ourselves: the fortified inline wrappers
 * glibc's headers put in their place would clash with the definitions. */
#undef _FORTIFY_SOURCE

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "io/io.h"

/* ---- the real functions (real.c) ---------------------------------------- */

/* glibc's fortified entry points, which programs built with
 * _FORTIFY_SOURCE call instead of read, recv, recvfrom and poll; the
 * headers declare them only under fortification. */
struct sockaddr;
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *alen);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
/* What crt1.o's _start calls; no header declares it. */
int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                      void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                      void *stack_end);

enum {
#define SP__HOOK_X(name) SP__R_##name,
#include "hook/hooks.def"
#undef SP__HOOK_X
    SP__R_COUNT
};

extern void *sp__hook_real_tab[SP__R_COUNT];
/* Looks the real function up (once; idempotent, so a race only repeats
 * the lookup) and returns it.  Aborts with a message naming it if libc
 * has no such function. */
void *sp__hook_resolve(int idx);
/* Looks every one up now (the constructor), so the hot path finds them. */
void sp__hook_resolve_all(void);

static inline void *sp__hook_real(int idx)
{
    void *p = __atomic_load_n(&sp__hook_real_tab[idx], __ATOMIC_RELAXED);
    return sp__likely(p != NULL) ? p : sp__hook_resolve(idx);
}

/* The real libc function `name`, typed as libc declares it. */
#define SP__REAL(name) ((__typeof__(&name))sp__hook_real(SP__R_##name))

/* ---- when to park (hook.c) ------------------------------------------------ */

enum {
    SP__HOOK_ON = 1,       /* = SP_HOOK_ON */
    SP__HOOK_THREADS = 2,  /* = SP_HOOK_THREADS: pthread_create spawns coroutines */
    SP__HOOK_FORKED = 4,   /* we are a fork()ed child: everything passes through */
};
extern _Atomic int sp__hook_mode;

/* Non-zero while hook code runs on this thread outside a park: a hooked
 * call made then (from a signal handler that interrupted a hook halfway)
 * must not touch the runtime, and goes straight to libc.  Saved and
 * cleared around every park, since other coroutines run meanwhile. */
extern sp__tls int sp__hook_depth;

/* Waits that parked a coroutine, for SPINDLE_HOOK_STATS. */
extern _Atomic uint64_t sp__hook_parks;

static inline int sp__hook_mode_get(void)
{
    return atomic_load_explicit(&sp__hook_mode, memory_order_relaxed);
}

/* The scheduler, when a call made here may park; NULL when it must go
 * straight to libc: hooks off or a forked child, no scheduler on this
 * thread, hook code already running (signal handler), the scheduler's own
 * context, a coroutine in the middle of a switch, or a root context whose
 * thread has nothing else to run. */
static inline sp_sched *sp__hook_sched(void)
{
    if (sp__likely((sp__hook_mode_get() & (SP__HOOK_ON | SP__HOOK_FORKED)) != SP__HOOK_ON))
        return NULL;
    sp_sched *s = sp__tls_sched;
    if (!s || sp__hook_depth)
        return NULL;
    sp_co *co = s->current;
    if (co->state != SP__CO_RUNNING || (co->flags & SP__F_SCHED))
        return NULL;
    if ((co->flags & SP__F_ROOT) && s->live == 0)
        return NULL;
    return s;
}

/* Parks on descriptors / sleeps, with the depth guard cleared meanwhile.
 * Both return 0 or a positive errno (ETIMEDOUT, ECANCELED, EBADF, ...)
 * and update *s to the scheduler the caller runs on afterwards. */
int sp__hook_wait_fds(sp_sched **s, const sp__fdwant *w, int n, int64_t deadline);
int sp__hook_sleep_until(sp_sched **s, int64_t deadline);

/* ---- the descriptor table (fdtab.c) -------------------------------------- */

enum {
    SP__HFD_KIND = 7,      /* one of the kinds below */
    SP__HFD_NONE = 0,      /* not seen being made: classified on first use */
    SP__HFD_SOCK = 1,
    SP__HFD_PIPE = 2,
    SP__HFD_EVENT = 3,
    SP__HFD_OTHER = 4,     /* looked at: not ours (regular file, tty...) */
    SP__HFD_STREAM = 8,    /* SOCK_STREAM or a pipe: a short transfer drains */
    SP__HFD_USER_NB = 16,  /* the program asked for O_NONBLOCK */
    SP__HFD_RT_NB = 32,    /* O_NONBLOCK is really set, and we need it */
};

typedef struct sp__hfd {
    _Atomic uint32_t flags;
    _Atomic uint32_t inc;       /* bumped whenever the number is made or closed */
    _Atomic int64_t rcvtimeo;   /* SO_RCVTIMEO in ns; 0: none */
    _Atomic int64_t sndtimeo;   /* SO_SNDTIMEO in ns; 0: none */
    /* The scheduler whose sp__fdstate for this number describes incarnation
     * owner_inc; any other scheduler, or a later incarnation, starts its
     * state over (fdtab.c, sp__hook_fdstate). */
    _Atomic(void *) owner;
    _Atomic uint32_t owner_inc;
} sp__hfd;

/* The entry of fd, or NULL (fd out of range, or create == 0 and its block
 * of the table does not exist yet: then it is SP__HFD_NONE).  create may
 * allocate; it returns NULL only when that fails. */
sp__hfd *sp__hfd_get(int fd, int create);

static inline uint32_t sp__hfd_flags(const sp__hfd *h)
{
    return h ? atomic_load_explicit(&h->flags, memory_order_relaxed) : 0;
}

/* A descriptor we may park on. */
static inline int sp__hfd_parkable(uint32_t f)
{
    uint32_t k = f & SP__HFD_KIND;
    return k == SP__HFD_SOCK || k == SP__HFD_PIPE || k == SP__HFD_EVENT;
}

/* fd was just made by a hooked call: a new incarnation with these flags. */
void sp__hfd_made(int fd, uint32_t flags);
/* fd is about to be closed (or replaced by dup2): forget it.  Called
 * before the real call, while the number is still ours. */
void sp__hfd_forget(int fd);
/* newfd was made as a duplicate of oldfd: same kind, flags and timeouts. */
void sp__hfd_dup(int oldfd, int newfd);
/* The flags of fd, classifying a descriptor of unknown origin first with
 * fstat: sockets are adopted, anything else is marked SP__HFD_OTHER. */
uint32_t sp__hfd_classify(int fd, sp__hfd **out);

/* This scheduler's state for fd, made valid for fd's current incarnation,
 * with O_NONBLOCK set when nonblock is asked.  NULL with errno set. */
sp__fdstate *sp__hook_fdstate(sp_sched *s, int fd, sp__hfd *h, int nonblock);

/* The absolute deadline a call on h starts with: now + SO_RCVTIMEO (ev
 * SP__EV_IN) or SO_SNDTIMEO (SP__EV_OUT), or -1. */
int64_t sp__hfd_deadline(const sp__hfd *h, unsigned ev);

/* Milliseconds from now until deadline, rounded up, for poll(2); -1 for
 * none, 0 once passed. */
int sp__hook_ms_until(int64_t deadline);

#endif
