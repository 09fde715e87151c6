/* Stack overflow reporting: a SIGSEGV handler, on an alternate signal stack
 * (the faulting stack has no room left), that recognises a hit on a guard
 * page and names the coroutine.  Faults that are not ours go to whatever
 * handler was there before, or to the default action (a core dump). */
#define _GNU_SOURCE
#include "stack/stack.h"
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Enough for the handler, write(2) and abort(), with margin for a sanitizer
 * runtime that also runs on it. */
#define SP__ALTSTACK_SIZE (64u * 1024)

static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static struct sigaction previous;            /* written once, before use */
/* Set by whichever thread starts first; all set the same function. */
static _Atomic(sp__overflow_lookup_fn) lookup_fn;
static sp__tls void *altstack;

static char *fmt_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *fmt_str(char *p, const char *end, const char *s)
{
    while (*s && p < end)
        *p++ = *s++;
    return p;
}

void sp__overflow_report(uint64_t id, const char *name, size_t size)
{
    char msg[256];
    char *end = msg + sizeof msg - 48;  /* room for the numbers and the tail */
    char *p = fmt_str(msg, end, "spindle: stack overflow in coroutine ");
    p = fmt_u64(p, id);
    p = fmt_str(p, end, " '");
    p = fmt_str(p, end, name ? name : "");
    p = fmt_str(p, msg + sizeof msg, "' (stack ");
    p = fmt_u64(p, size);
    p = fmt_str(p, msg + sizeof msg, " bytes)\n");
    ssize_t rc = write(STDERR_FILENO, msg, (size_t)(p - msg));
    (void)rc;
    abort();
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    uint64_t id;
    const char *name;
    size_t size;
    sp__overflow_lookup_fn fn = atomic_load_explicit(&lookup_fn, memory_order_relaxed);
    if (fn && fn(si->si_addr, &id, &name, &size))
        sp__overflow_report(id, name, size);
    /* Not a guard page: let the previous disposition handle it. */
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) {
            previous.sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Returning re-executes the faulting access, which now gets SIG_DFL. */
    signal(sig, SIG_DFL);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous);
}

int sp__overflow_thread_init(sp__overflow_lookup_fn lookup)
{
    atomic_store_explicit(&lookup_fn, lookup, memory_order_relaxed);
    pthread_once(&install_once, install);
    if (altstack)
        return 0;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return 0; /* the thread already has one (a sanitizer's, the user's) */
    void *m = mmap(NULL, SP__ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    stack_t ss = {.ss_sp = m, .ss_size = SP__ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        int e = errno;
        munmap(m, SP__ALTSTACK_SIZE);
        return -e;
    }
    altstack = m;
    return 0;
}

void sp__overflow_thread_fini(void)
{
    if (!altstack)
        return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(altstack, SP__ALTSTACK_SIZE);
    altstack = NULL;
}
