/* Threads: each thread's scheduler runs its own primitives independently;
 * a primitive belongs to the thread that first used it, and a coroutine of
 * another thread touching it aborts with a message naming the misuse
 * (the workers of one M:N runtime share a primitive: test_mn_bind.c). */
#include "sync_test.h"

#include <pthread.h>

#include "core/internal.h"

/* A thread's scheduler outlives the thread on purpose (sched.c: handles to
 * its coroutines may still be held); keep a pointer to each so that
 * LeakSanitizer sees them as reachable rather than leaked. */
static sp_sched *kept[16];
static int kept_n;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_scheduler(void)
{
    pthread_mutex_lock(&kept_lock);
    if (sp__tls_sched && kept_n < 16)
        kept[kept_n++] = sp__tls_sched;
    pthread_mutex_unlock(&kept_lock);
}

/* ---- independent threads ---- */

typedef struct pair {
    sp_chan *ping, *pong;
    sp_mutex mu;
    long counter;
} pair;

static void *ponger(void *arg)
{
    pair *p = arg;
    long v;
    while (sp_chan_recv(p->ping, &v, -1) == 0) {
        v++;
        if (sp_chan_send(p->pong, &v, -1) != 0)
            return IP(-1);
    }
    return NULL;
}

static void *counter_fn(void *arg)
{
    pair *p = arg;
    for (int i = 0; i < 1000; i++) {
        sp_mutex_lock(&p->mu, -1);
        long c = p->counter;
        sp_yield();
        p->counter = c + 1;
        sp_mutex_unlock(&p->mu);
    }
    return NULL;
}

static void *thread_main(void *arg)
{
    pair p = {.ping = sp_chan_make(sizeof(long), 0), .pong = sp_chan_make(sizeof(long), 0)};
    sp_mutex_init(&p.mu);
    sp_co *pong = sp_spawn(ponger, &p, NULL);
    sp_co *c1 = sp_spawn(counter_fn, &p, NULL), *c2 = sp_spawn(counter_fn, &p, NULL);
    long bad = 0;
    for (long i = 0; i < 50000; i++) {
        long v = i;
        if (sp_chan_send(p.ping, &v, -1) != 0 || sp_chan_recv(p.pong, &v, -1) != 0 ||
            v != i + 1)
            bad++;
    }
    sp_chan_close(p.ping);
    sp_join(pong, NULL);
    sp_join(c1, NULL);
    sp_join(c2, NULL);
    if (p.counter != 2000)
        bad += 1000000;
    sp_chan_free(p.ping);
    sp_chan_free(p.pong);
    keep_scheduler();
    return IP(bad);
}

static void test_threads_run_their_own(void **state)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, NULL), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        CHECK_EQ(PI(r), 0, "thread %d: bad round trips (+1,000,000 if its mutex let a "
                 "counter update through)", i);
    }
}

/* ---- a channel made on one thread, first used on another ---- */

static sp_chan *handed;

static void *use_handed(void *arg)
{
    int v = 3;
    if (sp_chan_send(handed, &v, 0) != 0 || sp_chan_recv(handed, &v, 0) != 0)
        return IP(-1);
    sp_chan_free(handed);
    keep_scheduler();
    return NULL;
}

static void test_made_here_used_there(void **state)
{
    /* Binding is at first use, not at sp_chan_make: a channel may be made
     * by the thread that sets things up and used by another. */
    handed = sp_chan_make(sizeof(int), 1);
    pthread_t t;
    pthread_create(&t, NULL, use_handed, NULL);
    void *r;
    pthread_join(t, &r);
    CHECK_EQ(PI(r), 0, "the other thread's send, recv and free");
}

/* ---- misuse ---- */

static sp_chan *mch;
static sp_mutex mmu = SP_MUTEX_INIT;
static sp_cond mcv = SP_COND_INIT;
static sp_sem msem = SP_SEM_INIT(1);
static sp_wg mwg = SP_WG_INIT;

typedef enum { M_SEND, M_RECV, M_SELECT, M_CLOSE, M_LOCK, M_SIGNAL, M_SEM, M_WG, M_COUNT } misuse;
static const char *const m_op[M_COUNT] = {"sp_chan_send", "sp_chan_recv", "sp_select",
                                          "sp_chan_close", "sp_mutex_lock", "sp_cond_signal",
                                          "sp_sem_release", "sp_wg_add"};

static void touch(misuse m)
{
    int v = 1;
    switch (m) {
    case M_SEND: sp_chan_send(mch, &v, 0); break;
    case M_RECV: sp_chan_recv(mch, &v, 0); break;
    case M_SELECT: {
        sp_select_case c = {mch, SP_CHAN_RECV, &v, 0};
        sp_select(&c, 1, 0);
        break;
    }
    case M_CLOSE: sp_chan_close(mch); break;
    case M_LOCK:
        if (sp_mutex_lock(&mmu, 0) == 0)
            sp_mutex_unlock(&mmu);
        break;
    case M_SIGNAL: sp_cond_signal(&mcv); break;
    case M_SEM: sp_sem_release(&msem); break;
    case M_WG: sp_wg_add(&mwg, 1); break;
    default: break;
    }
}

static void *other_thread(void *arg)
{
    touch((misuse)PI(arg));
    return NULL;
}

/* In a child: this thread uses everything, then another thread touches
 * one primitive. */
static void misuse_child(void *arg)
{
    mch = sp_chan_make(sizeof(int), 1);
    for (int m = 0; m < M_COUNT; m++)
        touch((misuse)m == M_CLOSE ? M_SEND : (misuse)m);
    pthread_t t;
    pthread_create(&t, NULL, other_thread, arg);
    pthread_join(t, NULL);
}

static void test_other_thread_aborts(void **state)
{
    for (int m = 0; m < M_COUNT; m++) {
        int status;
        char err[512];
        assert_int_equal(sp_test_child(misuse_child, IP(m), &status, err, sizeof err), 0);
        CHECK_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                   "%s from another thread's coroutine should abort; status %#x", m_op[m],
                   status);
        CHECK_TRUE(strstr(err, m_op[m]) && strstr(err, "another thread") &&
                       strstr(err, "M:N"),
                   "the message should name %s, say 'another thread' and point to the M:N "
                   "scheduler: '%s'", m_op[m], err);
    }
}

static void *lock_it(void *arg)
{
    sp_mutex *m = arg;
    int rc = sp_mutex_lock(m, -1);
    if (rc == 0)
        sp_mutex_unlock(m);
    keep_scheduler();
    return IP(rc);
}

static void test_init_releases_the_binding(void **state)
{
    /* A primitive used by one thread, re-initialised, serves another. */
    sp_mutex m = SP_MUTEX_INIT;
    sp_mutex_lock(&m, -1);
    sp_mutex_unlock(&m);
    sp_mutex_init(&m);
    pthread_t t;
    pthread_create(&t, NULL, lock_it, &m);
    void *r;
    pthread_join(t, &r);
    CHECK_EQ(PI(r), 0, "lock and unlock on another thread after sp_mutex_init");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_run_their_own),
        cmocka_unit_test(test_made_here_used_there),
        cmocka_unit_test(test_other_thread_aborts),
        cmocka_unit_test(test_init_releases_the_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
