#define _GNU_SOURCE
#include "stack/stack.h"
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if SP_VALGRIND
#include <valgrind/valgrind.h>
#endif

/* 8 MiB of address space a slab: 128 fixed stacks or 7 virtual ones per
 * mmap.  Only touched pages cost memory, so a big slab costs nothing but
 * address space (MAP_NORESERVE keeps it out of the commit charge). */
#define SP__SLAB_BYTES (8u * 1024 * 1024)
/* The canary of an unguarded stack is its lowest 64 bytes being zero.  A
 * fresh slab is zero, and a stack goes back to the pool only after its
 * canary was checked, so nothing is ever written: writing a pattern would
 * touch the stack's bottom page and cost every coroutine a page of memory.
 * An overflow that passes over the bottom leaves return addresses and
 * frame pointers there; one that writes only zeros is missed, as a
 * pattern canary misses a frame that skips it. */
#define SP__CANARY_BYTES 64

/* Process-wide, because the mapping limit is: how many guards exist, and how
 * many may.  Touched when slabs are carved, never on a spawn from the pool. */
static struct {
    pthread_once_t once;
    uint64_t budget;
    _Atomic uint64_t guarded, unguarded, mapped;
    pthread_mutex_t lock;  /* the orphan list below */
    void *orphans[SP__STACK_POOL_BUCKETS];
    size_t orphan_size[SP__STACK_POOL_BUCKETS];
    uint8_t orphan_kind[SP__STACK_POOL_BUCKETS];
} g = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER};

size_t sp__page_size(void)
{
    /* Every thread computes the same value: relaxed atomics make the cache
     * race-free (TSan saw two schedulers start at once). */
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

/* 3/8 of vm.max_map_count as guards (two mappings each) leaves a quarter of
 * the mappings to the rest of the program: libraries, malloc arenas, thread
 * stacks, our slabs. */
static void budget_init(void)
{
    uint64_t max_maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1 && v > 0)
            max_maps = v;
        fclose(f);
    }
    g.budget = max_maps * 3 / 8;
    const char *env = getenv("SPINDLE_GUARD_BUDGET"); /* for tests */
    if (env)
        g.budget = strtoull(env, NULL, 10);
}

void sp_stack_stats_get(sp_stack_stats *out)
{
    pthread_once(&g.once, budget_init);
    out->guarded = atomic_load_explicit(&g.guarded, memory_order_relaxed);
    out->unguarded = atomic_load_explicit(&g.unguarded, memory_order_relaxed);
    out->guard_budget = g.budget;
    out->mapped_bytes = atomic_load_explicit(&g.mapped, memory_order_relaxed);
}

size_t sp__stack_default_size(int kind)
{
    return kind == SP_STACK_VIRTUAL ? SP_STACK_VIRTUAL_SIZE : SP_STACK_FIXED_SIZE;
}

static sp__stack_bucket *bucket_for(sp__stack_pool *p, int kind, size_t size)
{
    for (int i = 0; i < SP__STACK_POOL_BUCKETS; i++) {
        sp__stack_bucket *b = &p->b[i];
        if (b->size == size && b->kind == kind)
            return b;
        if (b->size == 0) {
            b->size = size;
            b->kind = (uint8_t)kind;
            return b;
        }
    }
    return NULL; /* more distinct sizes than buckets: not pooled */
}

/* The free list is threaded through the top word of each free stack. */
static inline void **link_of(char *base, size_t size)
{
    return (void **)(base + size - sizeof(void *));
}

static int try_guard(char *guard)
{
    uint64_t n = atomic_fetch_add_explicit(&g.guarded, 1, memory_order_relaxed);
    if (n < g.budget && mprotect(guard, sp__page_size(), PROT_NONE) == 0)
        return 1;
    atomic_fetch_sub_explicit(&g.guarded, 1, memory_order_relaxed);
    return 0;
}

static int carve(sp__stack_bucket *b, int must_guard, sp__stack *out)
{
    /* The guard budget is needed only here: a spawn from the pool never
     * pays for pthread_once. */
    pthread_once(&g.once, budget_init);
    size_t page = sp__page_size();
    size_t slot = page + b->size;
    if (b->slab_left == 0) {
        size_t n = SP__SLAB_BYTES / slot;
        if (n == 0)
            n = 1;
        void *m = mmap(NULL, n * slot, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            return -ENOMEM;
        atomic_fetch_add_explicit(&g.mapped, n * slot, memory_order_relaxed);
        b->slab_next = m;
        b->slab_left = n;
    }
    char *guard = b->slab_next;
    out->base = guard + page;
    out->size = (uint32_t)b->size;
    out->kind = b->kind;
    out->guarded = (uint8_t)try_guard(guard);
    if (!out->guarded) {
        if (must_guard)
            return -ENOMEM; /* slot stays for the next caller */
        atomic_fetch_add_explicit(&g.unguarded, 1, memory_order_relaxed);
    }
    b->slab_next += slot;
    b->slab_left--;
#if SP_VALGRIND
    VALGRIND_STACK_REGISTER(out->base, out->base + out->size);
#endif
    return 0;
}

/* A free stack records whether it is guarded in its second-to-top word, next
 * to the free-list link, so reuse needs no side table. */
static inline uintptr_t *flags_of(char *base, size_t size)
{
    return (uintptr_t *)(base + size - 2 * sizeof(void *));
}

static int take_orphan(sp__stack_bucket *b, sp__stack *out)
{
    int found = 0;
    pthread_mutex_lock(&g.lock);
    for (int i = 0; i < SP__STACK_POOL_BUCKETS; i++) {
        if (g.orphans[i] && g.orphan_size[i] == b->size && g.orphan_kind[i] == b->kind) {
            char *top = g.orphans[i];
            char *base = top - b->size;
            g.orphans[i] = *link_of(base, b->size);
            out->base = base;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&g.lock);
    return found;
}

int sp__stack_alloc(sp__stack_pool *p, int kind, size_t size, int must_guard,
                    sp__stack *out)
{
    if (kind != SP_STACK_FIXED && kind != SP_STACK_VIRTUAL)
        return -EINVAL;
    size_t page = sp__page_size();
    size = SP__ALIGN_UP(size ? size : sp__stack_default_size(kind), page);
    if (size < 4 * page || size > (1u << 30))
        return -EINVAL; /* below: not even a signal frame fits; above: absurd */
    sp__stack_bucket *b = bucket_for(p, kind, size);
    if (!b)
        return -EINVAL;
    if (b->free && !must_guard) {
        char *top = b->free;
        char *base = top - size;
        b->free = *link_of(base, size);
        b->nfree--;
        out->base = base;
        out->size = (uint32_t)size;
        out->kind = (uint8_t)kind;
        out->guarded = (uint8_t)*flags_of(base, size);
    } else if (!must_guard && take_orphan(b, out)) {
        out->size = (uint32_t)size;
        out->kind = (uint8_t)kind;
        out->guarded = (uint8_t)*flags_of(out->base, size);
    } else {
        int rc = carve(b, must_guard, out);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void sp__stack_free(sp__stack_pool *p, const sp__stack *st)
{
    sp__stack_bucket *b = bucket_for(p, st->kind, st->size);
    if (st->kind == SP_STACK_VIRTUAL && st->size > SP_STACK_VIRTUAL_KEEP)
        (void)madvise(st->base, st->size - SP_STACK_VIRTUAL_KEEP, MADV_DONTNEED);
    if (!b)
        return; /* an odd size with no bucket: the slot is lost, not reused */
    *flags_of(st->base, st->size) = st->guarded;
    *link_of(st->base, st->size) = b->free;
    b->free = st->base + st->size;
    b->nfree++;
}

void sp__stack_pool_fini(sp__stack_pool *p)
{
    pthread_mutex_lock(&g.lock);
    for (int i = 0; i < SP__STACK_POOL_BUCKETS; i++) {
        sp__stack_bucket *b = &p->b[i];
        if (!b->free)
            continue;
        int slot = -1;
        for (int j = 0; j < SP__STACK_POOL_BUCKETS; j++) {
            if ((g.orphans[j] && g.orphan_size[j] == b->size && g.orphan_kind[j] == b->kind) ||
                (!g.orphans[j] && slot < 0))
                slot = j;
        }
        if (slot < 0)
            continue; /* every list taken by other sizes: these stay unused */
        /* Splice this thread's list in front of the orphan list. */
        char *top = b->free;
        for (;;) {
            void **link = link_of(top - b->size, b->size);
            if (!*link) {
                *link = g.orphans[slot];
                break;
            }
            top = *link;
        }
        g.orphans[slot] = b->free;
        g.orphan_size[slot] = b->size;
        g.orphan_kind[slot] = b->kind;
        b->free = NULL;
        b->nfree = 0;
    }
    pthread_mutex_unlock(&g.lock);
}

/* Reads the lowest bytes of a stack, which ASan may hold poisoned (the
 * redzones of deep frames a coroutine never returned from): not checked. */
#if SP_ASAN
__attribute__((no_sanitize_address))
#endif
int sp__stack_canary_ok(const sp__stack *st)
{
    if (st->guarded)
        return 1;
    const uint64_t *w = (const uint64_t *)(const void *)st->base;
    uint64_t any = 0;
    for (size_t i = 0; i < SP__CANARY_BYTES / sizeof *w; i++)
        any |= w[i];
    return any == 0;
}
