/* spindle: a coroutine runtime for high-concurrency servers.
 *
 * Conventions (see DESIGN.md):
 *  - Calls that mirror a system call return -1 and set errno; the others
 *    return 0 or a negative errno value, or NULL with errno set.
 *  - Deadlines are absolute CLOCK_MONOTONIC nanoseconds; -1 means none.
 *  - "May park" means the calling coroutine can be suspended, letting others
 *    on its thread run; on a plain thread outside any coroutine it parks the
 *    thread's root context the same way.
 */
#ifndef SPINDLE_H
#define SPINDLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct addrinfo;

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Stacks ----------------------------------------------------------- */

typedef enum sp_stack_kind {
    SP_STACK_DEFAULT = 0, /* the runtime default (sp_runtime_config) */
    /* mmap'd stack of a fixed size with a guard page below it, carved from a
     * large slab and pooled.  Cost: 2 kernel mappings while guarded (the guard
     * splits the slab), 0 extra once the guard budget is spent (see below). */
    SP_STACK_FIXED,
    /* A large lazy reservation (default 1 MiB) that the kernel commits page by
     * page; when the stack goes back to the pool everything below its top
     * SP_STACK_VIRTUAL_KEEP bytes is returned with madvise(MADV_DONTNEED), so
     * one deep call does not pin memory forever.  Mappings: as SP_STACK_FIXED. */
    SP_STACK_VIRTUAL,
    /* One run stack per thread (guarded).  A suspended coroutine's live frames
     * are copied out to a buffer sized to what it used and copied back when it
     * next runs; the copy is lazy (only when another shared-stack coroutine
     * needs the run stack).  Costs no mapping per coroutine: the way to a
     * million coroutines.  CONSEQUENCE: while a shared-stack coroutine is
     * suspended, pointers into its stack are NOT valid (the run stack holds
     * another coroutine's frames); never hand another coroutine the address of
     * a local variable that it may use while the owner is parked.  spindle's
     * own primitives keep all waiting state in the coroutine object. */
    SP_STACK_SHARED,
} sp_stack_kind;

/* Guard pages cost kernel mappings (vm.max_map_count, 65530 by default): each
 * guarded stack splits its slab into two mappings.  spindle guards stacks
 * while the process stays under a budget of 3/8 of max_map_count guards and
 * then carves further stacks unguarded, checking a canary at the bottom of the
 * stack each time the coroutine is suspended (an overflow is then caught at
 * the next suspend instead of at the faulting instruction).  Both cases end
 * the process with a message naming the coroutine; neither is silent. */
#define SP_STACK_FIXED_SIZE   (64u * 1024)   /* printf, getaddrinfo, the HTTP parser */
#define SP_STACK_VIRTUAL_SIZE (1024u * 1024) /* deep recursion, lazily committed */
#define SP_STACK_VIRTUAL_KEEP (16u * 1024)   /* kept committed when pooled */
#define SP_STACK_SHARED_SIZE  (256u * 1024)  /* the per-thread run stack */

typedef struct sp_stack_stats {
    uint64_t guarded;   /* stacks currently carrying a guard page */
    uint64_t unguarded; /* stacks carved without one (canary checked) */
    uint64_t guard_budget;
    uint64_t mapped_bytes; /* address space reserved for stacks */
} sp_stack_stats;

/* Process-wide stack counters; cheap, for tools and tests. */
void sp_stack_stats_get(sp_stack_stats *out);

/* ---- Coroutines ------------------------------------------------------- */

typedef struct sp_co sp_co;
typedef void *(*sp_co_fn)(void *arg);

typedef struct sp_co_attr {
    sp_stack_kind stack;  /* SP_STACK_DEFAULT: the runtime's default */
    size_t stack_size;    /* 0: the kind's default; rounded up to pages */
    const char *name;     /* kept by pointer: must outlive the coroutine */
    unsigned detached : 1;  /* no join: resources go back when it ends */
    unsigned suspended : 1; /* start suspended: first run by sp_resume */
    /* With several workers (sp_run, cfg.workers > 1): the coroutine always
     * runs on the worker that spawned it, never stolen by another.  Needed
     * by code that keeps state in thread-locals across a blocking call
     * (including errno read after the call by code that cached its
     * address, and libraries with per-thread caches).  Shared-stack and
     * suspended coroutines are pinned anyway: their frames live on one
     * worker's run stack, or their resumer is on that worker. */
    unsigned pinned : 1;
} sp_co_attr;

/* Creates a coroutine running fn(arg) and makes it ready to run on the
 * calling thread (unless attr->suspended).  attr may be NULL.  Returns the
 * handle, or NULL with errno ENOMEM (no memory or mappings for a stack) or
 * EINVAL (bad attribute).  Does not park. */
sp_co *sp_spawn(sp_co_fn fn, void *arg, const sp_co_attr *attr);

/* Waits until co has finished, stores its result (what fn returned or what it
 * passed to sp_exit) in *result if result is not NULL, and releases co.
 * Each joinable coroutine is joined exactly once.  Returns 0, or -1 with
 * errno EINVAL (co detached or already joined), EDEADLK (co is the caller) or
 * EBUSY (co is inside an sp_resume: join it once it suspends).  May park. */
int sp_join(sp_co *co, void **result);

/* Lets co release its resources by itself when it finishes.  Returns 0, or -1
 * with errno EINVAL if co is already detached or joined. */
int sp_detach(sp_co *co);

/* The running coroutine; on a thread outside any spawned coroutine, the
 * thread's root coroutine (id 0, name "main"). Never NULL. */
sp_co *sp_self(void);

uint64_t sp_co_id(const sp_co *co);       /* unique in the process, > 0 */
const char *sp_co_name(const sp_co *co);  /* "" when none was given */

/* Ends the calling coroutine with result, as if fn had returned it.  Calling
 * it from a root coroutine aborts with a message.  Does not return. */
void sp_exit(void *result) __attribute__((noreturn));

/* Round-robin: moves the caller to the tail of its thread's run queue and runs
 * the coroutine at the head.  Returns at once when no other is ready. */
void sp_yield(void);

/* Symmetric transfer: hands the CPU straight to co, which must be ready on the
 * caller's thread; the caller stays ready (tail of the run queue).  Returns 0
 * when the caller runs again, or -1 with errno EINVAL if co is the caller, has
 * finished, or is not ready (parked, suspended, on another thread). */
int sp_yield_to(sp_co *co);

/* Asymmetric pair: sp_resume runs co (ready, or suspended by sp_suspend or by
 * attr.suspended) until co calls sp_suspend or finishes.  Returns 0 if co
 * suspended, 1 if it finished (join it for its result), or -1 with errno
 * EINVAL if co cannot be resumed or EBUSY if another coroutine is joining it
 * (drive it with sp_resume before joining it, not while).  Parks the caller
 * meanwhile. */
int sp_resume(sp_co *co);
/* Returns control to the coroutine that resumed the caller; the caller stays
 * suspended (not ready) until resumed again.  Returns -1 with errno EINVAL if
 * the caller was not entered by sp_resume. */
int sp_suspend(void);

/* ---- Time, deadlines, cancellation ----------------------------------- */

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t sp_now(void);
/* The absolute deadline ms milliseconds from now; -1 for ms < 0 (none). */
int64_t sp_deadline_ms(int64_t ms);

/* Park the caller for ns nanoseconds / ms milliseconds / until the absolute
 * deadline.  Returns 0, or -1 with errno ECANCELED (sp_cancel) or EINVAL
 * (sp_sleep_until with a negative deadline).  Resolution: the poller's wait
 * (epoll_pwait2 or io_uring, nanoseconds); without a poller, clock_nanosleep.
 * Parks. */
int sp_sleep_ns(int64_t ns);
int sp_sleep_ms(int64_t ms);
int sp_sleep_until(int64_t deadline);

/* Cancels co (of the caller's thread, or with several workers of the
 * caller's runtime): a wait it is parked in (a sleep, I/O, a join, a lock,
 * a channel) ends with ECANCELED, and every later blocking spindle call it
 * makes fails with ECANCELED at once, so it unwinds.  Returns 0, or -1 with
 * errno EINVAL (co ended, a root, or of another thread).  Does not park. */
int sp_cancel(sp_co *co);
/* 1 if the calling coroutine has been cancelled. */
int sp_canceled(void);

/* A wake-up another thread may give: sp_park parks the calling coroutine
 * until sp_unpark(self), the deadline (absolute; -1 none) or sp_cancel.
 * An sp_unpark that comes while the coroutine is not parked is kept (one,
 * not counted) and makes its next sp_park return at once, so a wake-up
 * sent between a check and the park is never lost.  sp_park returns 0, or
 * -1 with errno ETIMEDOUT, ECANCELED, EINVAL (from a thread's root).
 * sp_unpark may be called from any thread: a coroutine of any worker, or a
 * thread that runs no coroutines at all (a library's callback thread);
 * returns 0, or -1 with EINVAL (co ended or a root).  Neither parks the
 * caller of sp_unpark. */
int sp_park(int64_t deadline);
int sp_unpark(sp_co *co);

/* ---- Coroutine I/O ------------------------------------------------------
 * These mirror the system calls they are named after (-1 and errno) on
 * descriptors that they make non-blocking.  Where the call would block, the
 * coroutine parks until the descriptor is ready, the deadline (absolute
 * monotonic ns, -1 none) passes (ETIMEDOUT), it is cancelled (ECANCELED) or
 * another coroutine sp_close()s the descriptor (EBADF).  Regular files never
 * wait on the poller: use the sp_file_* calls, which run on the offload pool
 * (or io_uring).  All of them may park. */

#define SP_LISTEN_REUSEPORT 1 /* sp_listen_tcp flag: SO_REUSEPORT */
#define SP_LISTEN_V6ONLY    2

/* A non-blocking, close-on-exec socket(2). */
int sp_socket(int domain, int type, int protocol);
/* Resolves host (numeric or name; NULL or "*" for any), binds with
 * SO_REUSEADDR (and SO_REUSEPORT if asked) and listens.  Returns the
 * descriptor, or -1 with errno (EAI errors as EINVAL/ENOENT). */
int sp_listen_tcp(const char *host, int port, int backlog, int flags);
/* accept4(2), non-blocking and close-on-exec.  Out of descriptors
 * (EMFILE/ENFILE), it does not spin: it sheds the pending connection with a
 * reserve descriptor where it can, then backs off (1 ms doubling to 100 ms)
 * and tries again until the deadline, so the listener survives and serves
 * again once descriptors free up. */
int sp_accept(int fd, struct sockaddr *addr, socklen_t *len, int64_t deadline);
int sp_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline);
ssize_t sp_read(int fd, void *buf, size_t len, int64_t deadline);
ssize_t sp_write(int fd, const void *buf, size_t len, int64_t deadline);
/* Writes all len bytes, parking as needed.  Returns len, or -1 with errno
 * (what was written before the error is lost to the caller). */
ssize_t sp_write_all(int fd, const void *buf, size_t len, int64_t deadline);
ssize_t sp_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
ssize_t sp_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
ssize_t sp_recv(int fd, void *buf, size_t len, int flags, int64_t deadline);
ssize_t sp_send(int fd, const void *buf, size_t len, int flags, int64_t deadline);
/* sendfile(2) from a regular file to a socket, parking while the socket is
 * full.  Returns the bytes sent (the whole count unless an error stops it). */
ssize_t sp_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, int64_t deadline);
/* Waits until fd is ready for events (SP_READ, SP_WRITE, or both). Returns
 * the ready subset (errors and hang-ups report as both), or -1 with errno.
 * With SP_MAYBE added, it trusts the runtime's own record of fd instead of
 * asking the kernel: it parks at once when the last call on fd found it
 * drained (or full), and returns the events asked for as soon as the
 * poller reports one, so the wait costs no system call of its own; the
 * call that follows may then still find nothing (EAGAIN, or a park). */
#define SP_READ  1
#define SP_WRITE 2
#define SP_MAYBE 4
int sp_wait_fd(int fd, int events, int64_t deadline);
/* Wakes every coroutine waiting on fd with EBADF, unregisters it from the
 * poller, and closes it.  Returns close(2)'s result. Does not park. */
int sp_close(int fd);

/* ---- Offload pool -------------------------------------------------------
 * Blocking work (regular files, DNS) runs on a few helper threads while the
 * coroutine parks; completion wakes it through the poller.  Memory the job
 * touches must stay valid while the caller is parked: not on a shared stack
 * (the sp_file_* calls below take care of that themselves). */

/* Runs fn(arg) on a helper thread and parks until it returns; stores its
 * result in *result.  Returns 0, or -1 with errno ECANCELED (the caller was
 * cancelled: the job still runs to completion, unobserved, and arg must stay
 * valid until then, so pass heap memory) or ENOMEM. */
int sp_offload(void *(*fn)(void *), void *arg, void **result);
/* Threads in the pool (default 4, SPINDLE_OFFLOAD_THREADS); set before the
 * first use.  Returns 0 or -EBUSY once the pool runs. */
int sp_offload_set_threads(int n);

int sp_file_open(const char *path, int flags, mode_t mode);
ssize_t sp_file_pread(int fd, void *buf, size_t len, off_t off);
ssize_t sp_file_pwrite(int fd, const void *buf, size_t len, off_t off);
int sp_file_fsync(int fd);
/* getaddrinfo(3) on the offload pool; returns its EAI_* code. */
int sp_getaddrinfo(const char *node, const char *service,
                   const struct addrinfo *hints, struct addrinfo **res);

/* ---- Runtime configuration ------------------------------------------- */

typedef enum sp_ctx_kind {
    SP_CTX_ASM = 0,   /* hand-written assembly (default) */
    SP_CTX_UCONTEXT,  /* glibc makecontext/swapcontext: saves the signal mask */
    SP_CTX_SJLJ,      /* _setjmp/_longjmp after one entry through ucontext */
} sp_ctx_kind;

typedef enum sp_switch_mode {
    SP_SWITCH_DIRECT = 0, /* A -> B: the yielding coroutine switches to the next */
    SP_SWITCH_STAR,       /* A -> scheduler -> B, as a central loop would */
} sp_switch_mode;

typedef enum sp_poll_kind {
    SP_POLL_DEFAULT = 0, /* the better of the two on this machine: see README */
    SP_POLL_EPOLL,
    SP_POLL_URING,       /* falls back to epoll, once, if io_uring is refused */
} sp_poll_kind;

typedef struct sp_config {
    int workers;              /* threads for sp_run; 0: the CPUs we may use */
    sp_ctx_kind ctx;
    sp_switch_mode switch_mode;
    sp_stack_kind stack;      /* default stack kind for spawns */
    size_t stack_size;        /* 0: the kind's default */
    /* The asm switch preserves each coroutine's MXCSR and x87 control words
     * (rounding, exception masks, FTZ/DAZ), which the ABI makes callee-saved:
     * two coroutines may run in different rounding modes.  The exception
     * flags (fetestexcept) are not preserved: like a function call, a switch
     * may change them, and under the asm switch they are the thread's.
     * Reading the words costs about 1 ns a switch.  A program whose
     * coroutines never change the floating-point control may set
     * fpenv_shared = 1: all of a thread's coroutines then share the thread's
     * control words, and a change made in one is seen by all.
     * SPINDLE_FPENV=shared sets it. */
    int fpenv_shared;
    sp_poll_kind poller;      /* SPINDLE_POLL=epoll|uring */
    int epoll_level;          /* level-triggered epoll (SPINDLE_EPOLL=level) */
} sp_config;

/* Fills cfg with the defaults (asm switch, direct mode, fixed stacks), then
 * applies SPINDLE_CTX (asm|ucontext|sjlj), SPINDLE_STACK (fixed|virtual|
 * shared), SPINDLE_SWITCH (direct|star) and SPINDLE_FPENV (coroutine|
 * shared) from the environment, so a whole
 * test suite can run against another backend.  Returns 0, or -EINVAL if one
 * of those variables has an unknown value. */
int sp_config_init(sp_config *cfg);

/* Configures the calling thread's scheduler before its first coroutine call.
 * Returns 0, -EBUSY if the thread's scheduler already runs, or -EINVAL. A
 * thread that never calls it gets sp_config_init's defaults on first use. */
int sp_thread_init(const sp_config *cfg);

/* Runs main_fn(arg) as a coroutine, drives the scheduler until main_fn and
 * every coroutine it left behind have finished, and stores main_fn's result
 * in *result.
 *
 * cfg NULL, or cfg->workers == 1: on the calling thread, as its
 * single-threaded scheduler (nothing on its hot paths is atomic).
 * cfg->workers > 1 (0: one per CPU the process may use, and one worker when
 * that is one CPU): M:N.  That many new threads, the workers, run the
 * coroutines, each from its own run queue, idle workers stealing half of a
 * busy one's queue; the calling thread waits.  A coroutine may run on a
 * different worker after any call that parks it, unless it is pinned
 * (sp_co_attr.pinned); see there for when that matters.  Channels, locks,
 * joins, cancels and sp_unpark work across workers.  A descriptor belongs
 * to the worker that first waits on it (its poller); a coroutine that
 * waits on it from another worker moves there first.  sp_yield_to and
 * sp_resume of a ready coroutine are for one worker only (EINVAL).
 *
 * Returns 0 or a negative errno: -EBUSY if cfg is given but the thread's
 * scheduler already runs under another configuration, -EDEADLK when called
 * from inside a coroutine, -EINVAL for workers < 0 or > SP_MAX_WORKERS,
 * -EAGAIN if the worker threads cannot be started. */
#define SP_MAX_WORKERS 1024
int sp_run(const sp_config *cfg, sp_co_fn main_fn, void *arg, void **result);

/* The M:N runtime the caller runs in (a coroutine on a worker), or NULL. */
typedef struct sp_runtime sp_runtime;
sp_runtime *sp_runtime_self(void);
/* Spawns into rt from any thread, including one that runs no coroutine
 * (sp_spawn on a worker spawns into its own runtime).  The coroutine is
 * queued for whichever worker is free first.  Returns the handle (join it
 * from a coroutine of rt) or NULL with errno ENOMEM, EINVAL, or ESRCH if rt
 * has finished.  rt stays valid while it has a coroutine left. */
sp_co *sp_spawn_in(sp_runtime *rt, sp_co_fn fn, void *arg, const sp_co_attr *attr);
/* The index (0..workers-1) of the worker the caller runs on, or -1. */
int sp_worker_index(void);
/* Pins (on != 0) the calling coroutine to the worker it runs on now, or
 * lets it move again (on == 0), as sp_co_attr.pinned does from its start.
 * Returns 0, or -1 with errno EINVAL for a shared-stack coroutine (always
 * pinned) or a thread's root. */
int sp_set_pinned(int on);
/* Moves the calling coroutine to worker `index` of its runtime: it parks
 * and goes on there (pinned or not, as before; unpinned, a thief may move
 * it again later).  Returns 0, or -1 with errno EINVAL (not on a worker,
 * index out of range, a shared-stack, resumed or root coroutine). */
int sp_move_to(int index);

const char *sp_ctx_name(sp_ctx_kind k);
const char *sp_stack_name(sp_stack_kind k);
/* The poller the calling thread uses ("epoll", "epoll-level", "uring"), or
 * NULL before its first I/O wait. */
const char *sp_poller_name(void);
/* Why io_uring was refused when it was asked for and epoll serves instead
 * (the errno of io_uring_setup: ENOSYS, EPERM, ...), or 0.  The library
 * never prints: a program says so once, from this. */
int sp_poller_fallback(void);

/* ---- Hook library ---------------------------------------------------------
 * Defined only in libspindle_hook: the .so that `spindle run --hook`
 * preloads, and libspindle_hook.a, which a program links whole INSTEAD of
 * libspindle.a (it carries the runtime):
 *   cc prog.c -Wl,--whole-archive libspindle_hook.a -Wl,--no-whole-archive
 *      -lpthread -ldl -lm [-luring]
 * With the hooks on, read, write, accept, connect, poll, select, sleep,
 * getaddrinfo, ... called inside a coroutine park it instead of blocking
 * the thread; elsewhere they are libc's, unchanged (src/hook/README.md). */

#define SP_HOOK_ON      1 /* hook the blocking calls */
#define SP_HOOK_THREADS 2 /* pthread_create in a coroutine spawns a coroutine */

/* Turns the hooks on or off for the whole process (flags: SP_HOOK_ON,
 * optionally | SP_HOOK_THREADS; 0 turns them off).  The preloaded library
 * starts on; the linked one starts off.  Returns the previous flags.
 * Does not park. */
int sp_hook_enable(int flags);
/* 1 if the caller runs on a spawned coroutine (not a thread's root
 * context, not the scheduler), 0 otherwise. */
int sp_in_coroutine(void);

#ifdef __cplusplus
}
#endif
#endif
