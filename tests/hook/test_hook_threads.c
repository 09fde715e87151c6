/* Threads as coroutines (SP_HOOK_THREADS): pthread_create in a coroutine
 * starts a coroutine on the same OS thread; join, detach, self and exit
 * behave as for threads; a mutex held across a blocking call does not
 * deadlock; and a real thread can be joined without blocking the rest. */
#include "hook_test.h"

#include <dirent.h>
#include <signal.h>

static int tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- many threads, each blocked in read, one OS thread ---- */

#define NTHREADS 100
static int pairs[NTHREADS][2];
static pid_t main_tid;
static int same_tid;

static void *conn_thread(void *arg)
{
    int i = (int)PI(arg);
    same_tid += gettid() == main_tid;
    char b[8];
    ssize_t n = read(pairs[i][0], b, sizeof b);
    assert_int_equal(n, 4);
    return IP(i * 10);
}

static void *many_threads(void *unused)
{
    main_tid = gettid();
    same_tid = 0;
    int before = tasks();
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]), 0);
        assert_int_equal(pthread_create(&t[i], NULL, conn_thread, IP(i)), 0);
    }
    usleep(10000); /* every one is parked in read now */
    assert_int_equal(tasks(), before);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(write(pairs[i][1], "data", 4), 4);
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_int_equal(PI(r), i * 10);
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
    assert_int_equal(same_tid, NTHREADS);
    return NULL;
}

static void test_threads_are_coroutines(void **state)
{
    hook_run(SP_HOOK_ON | SP_HOOK_THREADS, many_threads, NULL);
}

/* ---- self, detach, exit ---- */

static pthread_t seen_self;
static int detached_done;

static void *report_self(void *unused)
{
    seen_self = pthread_self();
    usleep(1000);
    pthread_exit(IP(42));
}

static void *self_detaching(void *unused)
{
    assert_int_equal(pthread_detach(pthread_self()), 0);
    usleep(2000);
    detached_done++;
    return NULL;
}

static void *born_detached(void *unused)
{
    usleep(2000);
    detached_done++;
    return NULL;
}

static void *identity(void *unused)
{
    pthread_t main_self = pthread_self();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, report_self, NULL), 0);
    void *r;
    assert_int_equal(pthread_join(t, &r), 0);
    assert_true(pthread_equal(seen_self, t));
    assert_false(pthread_equal(seen_self, main_self));
    assert_int_equal(PI(r), 42);

    detached_done = 0;
    assert_int_equal(pthread_create(&t, NULL, self_detaching, NULL), 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t2;
    assert_int_equal(pthread_create(&t2, &a, born_detached, NULL), 0);
    pthread_attr_destroy(&a);
    assert_int_equal(pthread_join(t2, NULL), EINVAL);
    /* Nothing to join: look until both are done, as long as a slow machine
     * may need (they are 2 ms sleeps). */
    for (int i = 0; i < 10000 && detached_done < 2; i++)
        usleep(1000);
    assert_int_equal(detached_done, 2);
    return NULL;
}

static void test_self_detach_exit(void **state)
{
    hook_run(SP_HOOK_ON | SP_HOOK_THREADS, identity, NULL);
}

/* ---- the calls that take a thread, given a coroutine-thread ---- */

static int named, stack_ok;

static void *introspect(void *unused)
{
    named = pthread_setname_np(pthread_self(), "worker") == 0;
    char name[16];
    named &= pthread_getname_np(pthread_self(), name, sizeof name) == 0 && !strcmp(name, "worker");
    named &= pthread_kill(pthread_self(), 0) == 0;
    pthread_attr_t a;
    void *lo;
    size_t size;
    int local;
    stack_ok = pthread_getattr_np(pthread_self(), &a) == 0 &&
               pthread_attr_getstack(&a, &lo, &size) == 0 &&
               (char *)&local > (char *)lo && (char *)&local < (char *)lo + size;
    pthread_attr_destroy(&a);
    usleep(100000);
    return IP(5);
}

static void *thread_calls(void *unused)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, introspect, NULL), 0);
    void *r = NULL;
    assert_int_equal(pthread_tryjoin_np(t, &r), EBUSY);
    struct timespec abs;
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 20000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_nsec -= 1000000000;
        abs.tv_sec++;
    }
    int64_t t0 = sp_now();
    assert_int_equal(pthread_timedjoin_np(t, &r, &abs), ETIMEDOUT);
    assert_true(hook_ms_since(t0) >= 19);
    assert_true(named); /* ran meanwhile: the timed join parked */
    assert_true(stack_ok);
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_sec += 30;
    assert_int_equal(pthread_clockjoin_np(t, &r, CLOCK_MONOTONIC, &abs), 0);
    assert_int_equal(PI(r), 5);
    return NULL;
}

static void test_thread_calls_on_coroutine_threads(void **state)
{
    hook_run(SP_HOOK_ON | SP_HOOK_THREADS, thread_calls, NULL);
}

/* ---- a mutex held across a blocking call ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int msv[2];
static char order[4];
static int norder;

static void *holder(void *unused)
{
    pthread_mutex_lock(&mu);
    char b[2];
    assert_int_equal(read(msv[0], b, 1), 1); /* parks, holding the mutex */
    order[norder++] = 'h';
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *waiter(void *unused)
{
    pthread_mutex_lock(&mu); /* would block the OS thread forever unhooked */
    order[norder++] = 'w';
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *feeder(void *unused)
{
    usleep(20000);
    assert_int_equal(write(msv[1], "!", 1), 1);
    return NULL;
}

static void *mutex_across_park(void *unused)
{
    norder = 0;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, msv), 0);
    pthread_t h, w, f;
    assert_int_equal(pthread_create(&h, NULL, holder, NULL), 0);
    usleep(1000);
    assert_int_equal(pthread_create(&w, NULL, waiter, NULL), 0);
    assert_int_equal(pthread_create(&f, NULL, feeder, NULL), 0);
    pthread_join(h, NULL);
    pthread_join(w, NULL);
    pthread_join(f, NULL);
    assert_int_equal(norder, 2);
    assert_memory_equal(order, "hw", 2);
    close(msv[0]);
    close(msv[1]);
    return NULL;
}

static void test_mutex_across_blocking_call(void **state)
{
    hook_run(SP_HOOK_ON | SP_HOOK_THREADS, mutex_across_park, NULL);
}

/* ---- joining a real thread from a coroutine ---- */

static void *real_worker(void *unused)
{
    /* It ends once the ticker has ticked, which it can only do while the
     * joiner is parked; ten seconds at most, so that a join that blocks the
     * thread fails below instead of hanging.  No scheduler on this thread:
     * nanosleep is a real sleep. */
    struct timespec ts = {0, 1000000};
    for (int i = 0; i < 10000 && __atomic_load_n(&hook_ticks, __ATOMIC_RELAXED) < 1; i++)
        nanosleep(&ts, NULL);
    return IP(7);
}

static void *join_real(void *unused)
{
    pthread_t t;
    int before = tasks();
    sp_co *tk = hook_ticker_start(); /* reset before the worker looks */
    assert_int_equal(pthread_create(&t, NULL, real_worker, NULL), 0); /* threads off */
    assert_int_equal(tasks(), before + 1);
    void *r;
    assert_int_equal(pthread_join(t, &r), 0);
    assert_int_equal(PI(r), 7);
    assert_true(hook_ticks >= 1); /* the join parked, the ticker ran */
    hook_ticker_stop(tk);
    return NULL;
}

static void test_join_real_thread_parks(void **state)
{
    hook_run(SP_HOOK_ON, join_real, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_are_coroutines),
        cmocka_unit_test(test_self_detach_exit),
        cmocka_unit_test(test_thread_calls_on_coroutine_threads),
        cmocka_unit_test(test_mutex_across_blocking_call),
        cmocka_unit_test(test_join_real_thread_parks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
