/* The thread binding under M:N: a primitive belongs to the runtime whose
 * coroutine used it first, so every worker of that runtime may use it
 * (even all of them at once, for its very first use), while a plain
 * thread's scheduler or another runtime that touches it aborts with a
 * message naming the misuse; the *_init calls release the binding. */
#include "mn_test.h"

#include <pthread.h>
#include <unistd.h>

/* ---- first use from every worker at once ---- */

#define FIRSTS MN_N(200)

static struct {
    sp_chan *ch;
    sp_mutex mu;
    sp_sem sem;
    _Atomic int round, waiting, done; /* users at the start line, past it */
    int workers;
} F;

/* One per worker, each pinned there: at every round all of them touch the
 * round's fresh primitives as nearly at once as they can. */
static void *first_user(void *arg)
{
    for (int r = 1; r <= FIRSTS; r++) {
        atomic_fetch_add(&F.waiting, 1);
        while (atomic_load(&F.round) < r)
            sp_yield(); /* never parks: every worker is here at once (the
                           yield lets the main coroutine run in between) */
        uint64_t v = (uint64_t)r;
        sp_chan_send(F.ch, &v, 0);
        if (sp_mutex_trylock(&F.mu) == 0)
            sp_mutex_unlock(&F.mu);
        sp_sem_release(&F.sem);
        atomic_fetch_add(&F.done, 1);
    }
    return NULL;
}

static void first_each(int slot, int nslots)
{
    sp_co_attr a = {.pinned = 1};
    mn_spawned[atomic_fetch_add(&mn_nspawned, 1)] = sp_spawn(first_user, NULL, &a);
}

static void *first_main(void *arg)
{
    int workers = (int)PI(arg);
    F.ch = sp_chan_make(sizeof(uint64_t), 64);
    sp_mutex_init(&F.mu);
    sp_sem_init(&F.sem, 0);
    if (!mn_all_workers_up(workers, first_each))
        return IP(-100);
    long got = 0;
    for (int r = 1; r <= FIRSTS; r++) {
        while (atomic_load(&F.waiting) < r * workers)
            sp_sleep_ns(1000);
        /* Everyone waits for round r: fresh, unbound primitives. */
        atomic_store(&F.round, r);
        while (atomic_load(&F.done) < r * workers)
            sp_sleep_ns(1000);
        uint64_t v;
        while (sp_chan_recv(F.ch, &v, 0) == 0)
            got += v == (uint64_t)r;
        while (sp_sem_acquire(&F.sem, 0) == 0)
            got += 1000000;
        sp_chan_free(F.ch);
        F.ch = sp_chan_make(sizeof(uint64_t), 64);
        sp_mutex_init(&F.mu);
        sp_sem_init(&F.sem, 0);
    }
    sp_chan_free(F.ch);
    long bad = join_spawned();
    return IP(bad ? -1 : got);
}

static void test_first_use_from_every_worker(void **state)
{
    for (int workers = 2; workers <= 4; workers += 2) {
        memset(&F, 0, sizeof F);
        void *r = mn_run(first_main, IP(workers), workers);
        CHECK_EQ(PI(r), (long)FIRSTS * workers * 1000001L, "values and units that every "
                 "worker put into fresh primitives at once (%d workers)", workers);
    }
}

/* ---- another scheduler touching the runtime's primitive, and back ---- */

static sp_mutex bm = SP_MUTEX_INIT;

static void *use_mutex(void *arg)
{
    if (sp_mutex_lock(&bm, -1) == 0)
        sp_mutex_unlock(&bm);
    return NULL;
}

static void run_use_mutex(void)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.workers = 2;
    sp_run(&cfg, use_mutex, NULL, NULL);
}

/* In a child: the runtime uses the mutex, then this thread's own
 * scheduler touches it. */
static void runtime_then_thread(void *arg)
{
    run_use_mutex();
    use_mutex(NULL);
}

static _Atomic int used;

static void *use_and_stay(void *arg)
{
    use_mutex(NULL);
    atomic_store(&used, 1);
    /* The runtime lives on while the other one runs, however late that
     * starts: the child ends with the abort, or with _exit if none comes. */
    for (;;)
        sp_sleep_ms(INT64_C(1) << 40);
    return NULL;
}

static void *run_use_and_stay(void *arg)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.workers = 2;
    sp_run(&cfg, use_and_stay, NULL, NULL);
    return NULL;
}

/* In a child: a runtime on another thread uses the mutex, and while it
 * still runs (two live runtimes are two distinct objects) a second one
 * touches it. */
static void runtime_then_runtime(void *arg)
{
    pthread_t t;
    pthread_create(&t, NULL, run_use_and_stay, NULL);
    while (!atomic_load(&used))
        usleep(1000);
    run_use_mutex();
}

/* In a child: this thread's scheduler uses it, then a runtime. */
static void thread_then_runtime(void *arg)
{
    use_mutex(NULL);
    run_use_mutex();
}

static void test_other_scheduler_aborts(void **state)
{
    if (SP_TEST_TSAN)
        skip(); /* TSan reports the core's fibers in a forked child (exit 66, not SIGABRT) */
    struct {
        void (*fn)(void *);
        void *arg;
        const char *what;
    } cases[] = {
        {runtime_then_thread, NULL, "a runtime's mutex, then a plain thread's coroutine"},
        {runtime_then_runtime, NULL, "a runtime's mutex, then another runtime's coroutine"},
        {thread_then_runtime, NULL, "a plain thread's mutex, then a runtime's coroutine"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status;
        char err[512];
        assert_int_equal(sp_test_child(cases[i].fn, cases[i].arg, &status, err, sizeof err), 0);
        int aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
#if SP_ASAN
        /* ASan's own check may trip over abort() on a worker's coroutine
         * stack and exit instead: the message says the abort came. */
        aborted |= WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                   strstr(err, "AddressSanitizer: CHECK failed");
#endif
        CHECK_TRUE(aborted, "%s should abort; status %#x, stderr '%s'", cases[i].what, status,
                   err);
        CHECK_TRUE(strstr(err, "sp_mutex_lock") && strstr(err, "another thread or M:N runtime"),
                   "%s: the message should name sp_mutex_lock and say whose it is: '%s'",
                   cases[i].what, err);
    }
}

static void test_init_releases_the_runtime(void **state)
{
    /* Two runtimes one after the other, the mutex re-initialised between:
     * the second may use it.  (Not in a child: nothing aborts.) */
    sp_mutex_init(&bm);
    run_use_mutex();
    sp_mutex_init(&bm);
    run_use_mutex();
    sp_mutex_init(&bm);
    use_mutex(NULL); /* and a plain thread after them */
    CHECK_EQ(sp_mutex_trylock(&bm), 0, "the mutex is free after every user unlocked it");
    sp_mutex_unlock(&bm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use_from_every_worker),
        cmocka_unit_test(test_other_scheduler_aborts),
        cmocka_unit_test(test_init_releases_the_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
