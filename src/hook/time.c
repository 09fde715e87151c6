/* Sleeps: inside a coroutine, a sleep parks it on the scheduler's timers
 * (the thread runs other coroutines meanwhile) instead of blocking the
 * thread.  Arguments are checked as the real calls check them, and a bad
 * one is handed to the real call so that it reports the error itself. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#define SP__NS 1000000000LL

static int ts_valid(const struct timespec *ts)
{
    return ts && ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < SP__NS;
}

/* ts as nanoseconds, saturating where a sum would overflow (a sleep of
 * centuries is a sleep forever). */
static int64_t ts_ns(const struct timespec *ts)
{
    if (ts->tv_sec >= INT64_MAX / SP__NS / 2)
        return INT64_MAX / 2;
    return (int64_t)ts->tv_sec * SP__NS + ts->tv_nsec;
}

static void ns_ts(int64_t ns, struct timespec *ts)
{
    if (ns < 0)
        ns = 0;
    ts->tv_sec = (time_t)(ns / SP__NS);
    ts->tv_nsec = (long)(ns % SP__NS);
}

/* Parks until deadline.  Returns 0, or a positive errno (ECANCELED) with
 * the time left in *rem if rem is not NULL. */
static int park_until(sp_sched *s, int64_t deadline, struct timespec *rem)
{
    int e = errno;
    sp__hook_depth++;
    int err = sp__hook_sleep_until(&s, deadline);
    sp__hook_depth--;
    errno = e; /* the callers set it themselves on failure */
    if (err && rem)
        ns_ts(deadline - sp_now(), rem);
    return err;
}

int nanosleep(const struct timespec *req, struct timespec *rem)
{
    sp_sched *s = sp__hook_sched();
    if (!s || !ts_valid(req))
        return SP__REAL(nanosleep)(req, rem);
    int err = park_until(s, sp_now() + ts_ns(req), rem);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem)
{
    sp_sched *s = sp__hook_sched();
    int known = clk == CLOCK_MONOTONIC || clk == CLOCK_REALTIME || clk == CLOCK_BOOTTIME;
    if (!s || !known || !ts_valid(req))
        return SP__REAL(clock_nanosleep)(clk, flags, req, rem);
    int64_t deadline;
    if (flags & TIMER_ABSTIME) {
        /* An absolute time on another clock: the distance to it now, on
         * the monotonic clock the timers run on. */
        struct timespec now;
        clock_gettime(clk, &now);
        deadline = sp_now() + (ts_ns(req) - ts_ns(&now));
        rem = NULL; /* not written for an absolute sleep */
    } else {
        deadline = sp_now() + ts_ns(req);
    }
    return park_until(s, deadline, rem); /* an error number, as the real one */
}

unsigned sleep(unsigned secs)
{
    sp_sched *s = sp__hook_sched();
    if (!s)
        return SP__REAL(sleep)(secs);
    struct timespec req = {(time_t)secs, 0}, rem;
    if (park_until(s, sp_now() + ts_ns(&req), &rem) == 0)
        return 0;
    return (unsigned)rem.tv_sec + (rem.tv_nsec > 0); /* seconds not slept, rounded up */
}

int usleep(useconds_t usec)
{
    sp_sched *s = sp__hook_sched();
    if (!s)
        return SP__REAL(usleep)(usec);
    int err = park_until(s, sp_now() + (int64_t)usec * 1000, NULL);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
