/* The offload pool: blocking work (regular files, DNS) on a few helper
 * threads while the coroutine parks, woken through its poller's eventfd.
 *
 * Jobs are heap blocks, not stack memory: a helper writes the result while
 * the coroutine is parked, and a shared-stack coroutine's stack is copied
 * away meanwhile.  For the same reason arguments that lie on the run stack
 * (a path, a buffer) are copied or bounced through the heap. */
#define _GNU_SOURCE
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Enough to overlap a few disk reads and a DNS lookup; the work is I/O
 * bound, so more threads than cores is fine.  SPINDLE_OFFLOAD_THREADS. */
#define SP__OFFLOAD_THREADS 4

struct sp__offload_job {
    sp__offload_job *next;      /* first member: the io's done list */
    sp__offload_job *qnext;     /* the pool's queue */
    void *(*fn)(void *);
    void *arg;
    void *result;
    sp_co *co;
    sp__io *io;
    int abandoned;              /* guarded by io->lock */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sp__offload_job *head, *tail;
    int nthreads, started;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0};

static void *worker(void *unused)
{
    for (;;) {
        pthread_mutex_lock(&pool.lock);
        while (!pool.head)
            pthread_cond_wait(&pool.cond, &pool.lock);
        sp__offload_job *job = pool.head;
        pool.head = job->qnext;
        if (!pool.head)
            pool.tail = NULL;
        pthread_mutex_unlock(&pool.lock);

        job->result = job->fn(job->arg);

        sp__io *io = job->io;
        pthread_mutex_lock(&io->lock);
        if (job->abandoned) {
            io->jobs_out--;
            pthread_mutex_unlock(&io->lock);
            free(job);
            continue;
        }
        job->next = io->done;
        io->done = job;
        pthread_mutex_unlock(&io->lock);
        io->poller.ops->wake(&io->poller);
    }
    return NULL;
}

int sp_offload_set_threads(int n)
{
    if (n < 1)
        return -EINVAL;
    pthread_mutex_lock(&pool.lock);
    int rc = pool.started ? -EBUSY : 0;
    if (!rc)
        pool.nthreads = n;
    pthread_mutex_unlock(&pool.lock);
    return rc;
}

/* Starts the helpers on first use; returns 0 or -errno. */
static int pool_start_locked(void)
{
    if (pool.started)
        return 0;
    int n = pool.nthreads;
    if (!n) {
        const char *e = getenv("SPINDLE_OFFLOAD_THREADS");
        n = e && atoi(e) > 0 ? atoi(e) : SP__OFFLOAD_THREADS;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* Helpers run libc calls (getaddrinfo needs room), nothing deep. */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int started = 0;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, worker, NULL) == 0)
            started++;
    }
    pthread_attr_destroy(&attr);
    if (!started)
        return -EAGAIN;
    pool.nthreads = started;
    pool.started = 1;
    return 0;
}

static int submit(sp__offload_job *job)
{
    pthread_mutex_lock(&pool.lock);
    int rc = pool_start_locked();
    if (rc == 0) {
        job->qnext = NULL;
        if (pool.tail)
            pool.tail->qnext = job;
        else
            pool.head = job;
        pool.tail = job;
        pthread_cond_signal(&pool.cond);
    }
    pthread_mutex_unlock(&pool.lock);
    return rc;
}

void sp__offload_complete(sp_sched *s, sp__offload_job *job)
{
    sp__io *io = job->io;
    pthread_mutex_lock(&io->lock);
    io->jobs_out--;
    pthread_mutex_unlock(&io->lock);
    if (job->abandoned) {
        free(job);
        return;
    }
    sp__wake(s, job->co, 0);
}

static void offload_unlink(sp_co *co)
{
    sp__offload_job *job = co->wait_obj;
    pthread_mutex_lock(&job->io->lock);
    job->abandoned = 1; /* the helper (or the drain) frees it */
    pthread_mutex_unlock(&job->io->lock);
}

/* Runs fn(arg) on the pool.  cancellable: a cancel abandons the job (it
 * still runs); otherwise the caller waits for it whatever happens, which
 * the file calls need since the helper writes into the caller's memory.
 * Returns 0 or a positive errno; on 0, *result holds fn's result. */
static int offload(sp_sched *s, void *(*fn)(void *), void *arg, void **result, int cancellable)
{
    sp__io *io = sp__io_get(s);
    if (!io)
        return errno;
    if (cancellable && sp__canceled(s->current))
        return ECANCELED;
    sp__offload_job *job = calloc(1, sizeof *job);
    if (!job)
        return ENOMEM;
    job->fn = fn;
    job->arg = arg;
    job->co = s->current;
    job->io = io;
    pthread_mutex_lock(&io->lock);
    io->jobs_out++;
    pthread_mutex_unlock(&io->lock);
    int rc = submit(job);
    if (rc < 0) {
        pthread_mutex_lock(&io->lock);
        io->jobs_out--;
        pthread_mutex_unlock(&io->lock);
        free(job);
        return -rc;
    }
    s->poll_waiters++;
    int err = 0;
    if (cancellable) {
        s->current->wait_obj = job;
        s->current->wait_unlink = offload_unlink;
        err = sp__wait(s, -1);
    } else {
        sp__park(s); /* sp_cancel cannot end this wait (see timer.c) */
    }
    s = sp__sched();
    s->poll_waiters--;
    if (err)
        return err; /* abandoned: freed elsewhere */
    *result = job->result;
    free(job);
    return 0;
}

int sp_offload(void *(*fn)(void *), void *arg, void **result)
{
    void *r = NULL;
    int err = offload(sp__sched(), fn, arg, &r, 1);
    if (err) {
        errno = err;
        return -1;
    }
    if (result)
        *result = r;
    return 0;
}

/* ---- files ---- */

typedef struct file_op {
    int op, fd;
    void *buf;
    size_t len;
    off_t off;
    const char *path;
    int flags;
    mode_t mode;
    ssize_t res;
    int err;
} file_op;

static void *run_file_op(void *arg)
{
    file_op *f = arg;
    switch (f->op) {
    case SP__FILE_READ: f->res = pread(f->fd, f->buf, f->len, f->off); break;
    case SP__FILE_WRITE: f->res = pwrite(f->fd, f->buf, f->len, f->off); break;
    case SP__FILE_FSYNC: f->res = fsync(f->fd); break;
    default: f->res = open(f->path, f->flags | O_CLOEXEC, f->mode); break;
    }
    f->err = f->res < 0 ? errno : 0;
    return NULL;
}

#define SP__FILE_OPEN 99

/* Runs one file operation on io_uring when the poller is io_uring, else on
 * the pool.  f is heap memory.  Returns the result, -1 with errno. */
static ssize_t file_call(file_op *f)
{
    sp_sched *s = sp__sched();
    sp__io *io = sp__io_get(s);
    if (!io)
        return -1;
    if (io->poller.ops->submit_file && f->op != SP__FILE_OPEN) {
        sp_co *co = s->current;
        int rc = io->poller.ops->submit_file(&io->poller, f->op, f->fd, f->buf, f->len,
                                             f->off, co);
        if (rc == 0) {
            s->poll_waiters++;
            sp__park(s); /* woken by the completion: see fd.c on_event */
            s = sp__sched();
            s->poll_waiters--;
            intptr_t res = (intptr_t)co->wait_obj;
            co->wait_obj = NULL;
            if (res < 0) {
                errno = (int)-res;
                return -1;
            }
            return (ssize_t)res;
        }
    }
    void *unused;
    int err = offload(s, run_file_op, f, &unused, 0);
    if (err) {
        errno = err;
        return -1;
    }
    if (f->res < 0)
        errno = f->err;
    return f->res;
}

static ssize_t file_rw(int op, int fd, void *buf, size_t len, off_t off)
{
    sp_sched *s = sp__sched();
    file_op *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->op = op;
    f->fd = fd;
    f->len = len;
    f->off = off;
    f->buf = buf;
    void *bounce = NULL;
    if (buf && sp__on_run_stack(s, buf, len)) {
        bounce = malloc(len ? len : 1);
        if (!bounce) {
            free(f);
            return -1;
        }
        if (op == SP__FILE_WRITE)
            memcpy(bounce, buf, len);
        f->buf = bounce;
    }
    ssize_t r = file_call(f);
    int e = errno;
    if (bounce) {
        if (op == SP__FILE_READ && r > 0)
            memcpy(buf, bounce, (size_t)r);
        free(bounce);
    }
    free(f);
    errno = e;
    return r;
}

ssize_t sp_file_pread(int fd, void *buf, size_t len, off_t off)
{
    return file_rw(SP__FILE_READ, fd, buf, len, off);
}

ssize_t sp_file_pwrite(int fd, const void *buf, size_t len, off_t off)
{
    return file_rw(SP__FILE_WRITE, fd, (void *)buf, len, off);
}

int sp_file_fsync(int fd)
{
    return (int)file_rw(SP__FILE_FSYNC, fd, NULL, 0, 0);
}

int sp_file_open(const char *path, int flags, mode_t mode)
{
    file_op *f = calloc(1, sizeof *f);
    char *copy = strdup(path); /* the helper reads it while we are parked */
    if (!f || !copy) {
        free(f);
        free(copy);
        errno = ENOMEM;
        return -1;
    }
    f->op = SP__FILE_OPEN;
    f->path = copy;
    f->flags = flags;
    f->mode = mode;
    ssize_t r = file_call(f);
    int e = errno;
    free(copy);
    free(f);
    errno = e;
    return (int)r;
}

/* ---- DNS ---- */

typedef struct gai_op {
    char *node, *service;
    struct addrinfo hints, *res;
    int has_hints, rc, err;
} gai_op;

static void *run_gai(void *arg)
{
    gai_op *g = arg;
    g->rc = getaddrinfo(g->node, g->service, g->has_hints ? &g->hints : NULL, &g->res);
    g->err = errno;
    return NULL;
}

int sp_getaddrinfo(const char *node, const char *service,
                   const struct addrinfo *hints, struct addrinfo **res)
{
    /* Numeric hosts need no resolver: answer on the spot. */
    if (!node || (hints && (hints->ai_flags & AI_NUMERICHOST))) {
        return getaddrinfo(node, service, hints, res);
    }
    struct addrinfo numeric = {0};
    if (hints)
        numeric = *hints;
    numeric.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo(node, service, &numeric, res) == 0)
        return 0;
    gai_op *g = calloc(1, sizeof *g);
    if (!g)
        return EAI_MEMORY;
    g->node = strdup(node);
    g->service = service ? strdup(service) : NULL;
    if (!g->node || (service && !g->service)) {
        free(g->node);
        free(g->service);
        free(g);
        return EAI_MEMORY;
    }
    if (hints) {
        g->hints = *hints;
        g->has_hints = 1;
    }
    void *unused;
    int err = offload(sp__sched(), run_gai, g, &unused, 0);
    int rc = err ? EAI_SYSTEM : g->rc;
    if (err)
        errno = err;
    else if (rc == EAI_SYSTEM)
        errno = g->err;
    if (rc == 0)
        *res = g->res;
    free(g->node);
    free(g->service);
    free(g);
    return rc;
}
