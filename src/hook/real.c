/* The real libc functions behind the hooks, and how the runtime reaches
 * them without calling a hook.
 *
 * THE RECURSION PROBLEM.  libspindle_hook defines read, write, close, ...
 * and also carries the runtime, whose io layer calls read, write, close,
 * accept4, fcntl, poll, pthread_create (the offload pool), getaddrinfo (on
 * that pool) and pthread_mutex_lock.  Left alone, those calls bind to the
 * hooks: sp_close would call the close hook, which calls sp_close...
 *
 * The choices were (1) a per-thread "inside the runtime" guard, (2)
 * rewriting the runtime to call sp__sys_read-style wrappers, and (3)
 * renaming the runtime's references at build time.  (1) breaks on the
 * first park: the guard belongs to the coroutine that set it, but the
 * next coroutine runs on the same thread and would see it, so it would
 * have to be saved in every switch; and it costs a check in every runtime
 * call.  (2) touches a dozen files in five layers that others keep
 * editing, and the first `read(` anyone adds later silently brings the
 * recursion back; it would also make the plain libspindle call syscall(2)
 * behind the sanitizers' interceptors.
 *
 * We do (3): src/hook/CMakeLists.txt links the runtime's objects into one
 * relocatable object and renames, with objcopy --redefine-syms, every
 * reference to a name in hooks.def to sp__real_<name>, defined below as a
 * call to the real function.  The runtime inside libspindle_hook therefore
 * cannot reach a hook, whatever is added to it later; its sources stay as
 * they are, and the plain libspindle pays nothing.  The hooks themselves
 * call libc through SP__REAL(name) only.
 *
 * The real functions are found with dlsym(RTLD_NEXT), once each, from the
 * constructor (hook.c) or on first use if something calls a hook before
 * the constructor ran (another library's constructor).  In a sanitizer
 * build the sanitizer's interceptor (__interceptor_<name>) is preferred:
 * our definition of, say, pthread_create in the program replaces the
 * sanitizer's own (a weak alias), and skipping it would leave new threads
 * unknown to ASan. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

void *sp__hook_real_tab[SP__R_COUNT];

static const char *const real_names[SP__R_COUNT] = {
#define SP__HOOK_X(name) #name,
#include "hook/hooks.def"
#undef SP__HOOK_X
};

static void *lookup(int idx)
{
    const char *name = real_names[idx];
    void *p = NULL;
#if SP_ASAN || SP_TSAN
    char buf[64];
    snprintf(buf, sizeof buf, "__interceptor_%s", name);
    p = dlsym(RTLD_DEFAULT, buf);
#endif
    if (!p)
        p = dlsym(RTLD_NEXT, name);
    if (p)
        __atomic_store_n(&sp__hook_real_tab[idx], p, __ATOMIC_RELAXED);
    return p;
}

void *sp__hook_resolve(int idx)
{
    void *p = lookup(idx);
    if (!p)
        sp__fatal("hook: libc has no %s (a statically linked program cannot be hooked)",
                  real_names[idx]);
    return p;
}

void sp__hook_resolve_all(void)
{
    for (int i = 0; i < SP__R_COUNT; i++)
        lookup(i); /* one this libc lacks is reported if it is ever called */
}

/* ---- what the renamed runtime calls ----------------------------------------
 * One per name in hooks.def that the runtime could call, with libc's exact
 * prototype.  They are defined even where today's runtime does not call
 * them, so a call added later links. */

ssize_t sp__real_read(int fd, void *buf, size_t len) { return SP__REAL(read)(fd, buf, len); }
ssize_t sp__real_write(int fd, const void *buf, size_t len) { return SP__REAL(write)(fd, buf, len); }
ssize_t sp__real_readv(int fd, const struct iovec *iov, int n) { return SP__REAL(readv)(fd, iov, n); }
ssize_t sp__real_writev(int fd, const struct iovec *iov, int n) { return SP__REAL(writev)(fd, iov, n); }

ssize_t sp__real_recv(int fd, void *buf, size_t len, int flags)
{
    return SP__REAL(recv)(fd, buf, len, flags);
}

ssize_t sp__real_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *a,
                          socklen_t *alen)
{
    return SP__REAL(recvfrom)(fd, buf, len, flags, a, alen);
}

ssize_t sp__real_recvmsg(int fd, struct msghdr *m, int flags)
{
    return SP__REAL(recvmsg)(fd, m, flags);
}

ssize_t sp__real_send(int fd, const void *buf, size_t len, int flags)
{
    return SP__REAL(send)(fd, buf, len, flags);
}

ssize_t sp__real_sendto(int fd, const void *buf, size_t len, int flags,
                        const struct sockaddr *a, socklen_t alen)
{
    return SP__REAL(sendto)(fd, buf, len, flags, a, alen);
}

ssize_t sp__real_sendmsg(int fd, const struct msghdr *m, int flags)
{
    return SP__REAL(sendmsg)(fd, m, flags);
}

int sp__real_accept(int fd, struct sockaddr *a, socklen_t *alen)
{
    return SP__REAL(accept)(fd, a, alen);
}

int sp__real_accept4(int fd, struct sockaddr *a, socklen_t *alen, int flags)
{
    return SP__REAL(accept4)(fd, a, alen, flags);
}

int sp__real_connect(int fd, const struct sockaddr *a, socklen_t alen)
{
    return SP__REAL(connect)(fd, a, alen);
}

int sp__real_poll(struct pollfd *fds, nfds_t n, int timeout) { return SP__REAL(poll)(fds, n, timeout); }

int sp__real_select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    return SP__REAL(select)(n, r, w, e, tv);
}

unsigned sp__real_sleep(unsigned s) { return SP__REAL(sleep)(s); }
int sp__real_usleep(useconds_t us) { return SP__REAL(usleep)(us); }

int sp__real_nanosleep(const struct timespec *req, struct timespec *rem)
{
    return SP__REAL(nanosleep)(req, rem);
}

int sp__real_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                             struct timespec *rem)
{
    return SP__REAL(clock_nanosleep)(clk, flags, req, rem);
}

int sp__real_close(int fd) { return SP__REAL(close)(fd); }
int sp__real_socket(int d, int t, int p) { return SP__REAL(socket)(d, t, p); }
int sp__real_socketpair(int d, int t, int p, int sv[2]) { return SP__REAL(socketpair)(d, t, p, sv); }
int sp__real_pipe(int p[2]) { return SP__REAL(pipe)(p); }
int sp__real_pipe2(int p[2], int flags) { return SP__REAL(pipe2)(p, flags); }
int sp__real_eventfd(unsigned v, int flags) { return SP__REAL(eventfd)(v, flags); }
int sp__real_dup(int fd) { return SP__REAL(dup)(fd); }
int sp__real_dup2(int fd, int to) { return SP__REAL(dup2)(fd, to); }
int sp__real_dup3(int fd, int to, int flags) { return SP__REAL(dup3)(fd, to, flags); }

/* fcntl and ioctl take one optional argument, an int or a pointer; glibc
 * itself reads it as a pointer whatever the command, which the ABIs we
 * support (x86_64, aarch64) pass the same way. */
int sp__real_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return SP__REAL(fcntl)(fd, cmd, arg);
}

int sp__real_fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return SP__REAL(fcntl64)(fd, cmd, arg);
}

int sp__real_ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return SP__REAL(ioctl)(fd, req, arg);
}

int sp__real_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    return SP__REAL(setsockopt)(fd, level, name, val, len);
}

int sp__real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                         struct addrinfo **res)
{
    return SP__REAL(getaddrinfo)(node, service, hints, res);
}

ssize_t sp__real___read_chk(int fd, void *buf, size_t len, size_t buflen)
{
    return SP__REAL(__read_chk)(fd, buf, len, buflen);
}

ssize_t sp__real___recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
    return SP__REAL(__recv_chk)(fd, buf, len, buflen, flags);
}

ssize_t sp__real___recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                                struct sockaddr *a, socklen_t *alen)
{
    return SP__REAL(__recvfrom_chk)(fd, buf, len, buflen, flags, a, alen);
}

int sp__real___poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    return SP__REAL(__poll_chk)(fds, n, timeout, fdslen);
}

int sp__real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    return SP__REAL(pthread_create)(t, a, fn, arg);
}

int sp__real_pthread_join(pthread_t t, void **ret) { return SP__REAL(pthread_join)(t, ret); }
int sp__real_pthread_detach(pthread_t t) { return SP__REAL(pthread_detach)(t); }
pthread_t sp__real_pthread_self(void) { return SP__REAL(pthread_self)(); }
int sp__real_pthread_mutex_lock(pthread_mutex_t *m) { return SP__REAL(pthread_mutex_lock)(m); }

int sp__real_pthread_tryjoin_np(pthread_t t, void **ret)
{
    return SP__REAL(pthread_tryjoin_np)(t, ret);
}

int sp__real_pthread_timedjoin_np(pthread_t t, void **ret, const struct timespec *abs)
{
    return SP__REAL(pthread_timedjoin_np)(t, ret, abs);
}

int sp__real_pthread_clockjoin_np(pthread_t t, void **ret, clockid_t clk,
                                  const struct timespec *abs)
{
    return SP__REAL(pthread_clockjoin_np)(t, ret, clk, abs);
}

int sp__real_pthread_cancel(pthread_t t) { return SP__REAL(pthread_cancel)(t); }
int sp__real_pthread_kill(pthread_t t, int sig) { return SP__REAL(pthread_kill)(t, sig); }

int sp__real_pthread_sigqueue(pthread_t t, int sig, const union sigval v)
{
    return SP__REAL(pthread_sigqueue)(t, sig, v);
}

int sp__real_pthread_setname_np(pthread_t t, const char *n)
{
    return SP__REAL(pthread_setname_np)(t, n);
}

int sp__real_pthread_getname_np(pthread_t t, char *n, size_t len)
{
    return SP__REAL(pthread_getname_np)(t, n, len);
}

int sp__real_pthread_getattr_np(pthread_t t, pthread_attr_t *a)
{
    return SP__REAL(pthread_getattr_np)(t, a);
}

int sp__real_pthread_setaffinity_np(pthread_t t, size_t n, const cpu_set_t *set)
{
    return SP__REAL(pthread_setaffinity_np)(t, n, set);
}

int sp__real_pthread_getaffinity_np(pthread_t t, size_t n, cpu_set_t *set)
{
    return SP__REAL(pthread_getaffinity_np)(t, n, set);
}

int sp__real_pthread_setschedparam(pthread_t t, int pol, const struct sched_param *p)
{
    return SP__REAL(pthread_setschedparam)(t, pol, p);
}

int sp__real_pthread_getschedparam(pthread_t t, int *pol, struct sched_param *p)
{
    return SP__REAL(pthread_getschedparam)(t, pol, p);
}

int sp__real_pthread_setschedprio(pthread_t t, int prio)
{
    return SP__REAL(pthread_setschedprio)(t, prio);
}

int sp__real_pthread_getcpuclockid(pthread_t t, clockid_t *c)
{
    return SP__REAL(pthread_getcpuclockid)(t, c);
}

__attribute__((noreturn)) void sp__real_pthread_exit(void *ret)
{
    SP__REAL(pthread_exit)(ret);
    __builtin_unreachable();
}
