/* Coroutine stacks (layer "stack"): carving, guarding, pooling.
 *
 * Stacks are carved from slabs (one mmap of several stack slots), so a
 * million stacks cost a few thousand mmaps, not a million.  A slot is a page
 * followed by the stack; the page becomes a PROT_NONE guard while the
 * process-wide guard budget lasts (each guard splits its slab: two kernel
 * mappings a stack, against vm.max_map_count), and otherwise stays unused
 * while a canary at the stack's lowest bytes stands in for it (stack.c
 * says why the canary is zeros). */
#ifndef SP_STACK_H
#define SP_STACK_H

#include <spindle.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sp__stack {
    char *base;       /* lowest usable byte; top = base + size */
    uint32_t size;    /* stacks are far below 4 GiB; 16 bytes a stack */
    uint8_t kind;     /* SP_STACK_FIXED or SP_STACK_VIRTUAL */
    uint8_t guarded;  /* 1: PROT_NONE page below base; 0: canary at base */
} sp__stack;

#define SP__STACK_POOL_BUCKETS 8

typedef struct sp__stack_bucket {
    size_t size;
    uint8_t kind;
    void *free;        /* free stacks, linked through their top word */
    size_t nfree;
    char *slab_next;   /* next uncarved slot of the current slab */
    size_t slab_left;  /* slots left in it */
} sp__stack_bucket;

/* Per-thread; embedded in the scheduler, zero-initialised. */
typedef struct sp__stack_pool {
    sp__stack_bucket b[SP__STACK_POOL_BUCKETS];
} sp__stack_pool;

/* Takes a stack of `kind` (FIXED or VIRTUAL) and `size` (0: the kind's
 * default; rounded up to pages) from the pool, carving a new slab when the
 * pool is empty.  must_guard: fail rather than go unguarded (run stacks).
 * Returns 0, or -ENOMEM (no address space or mappings), -EINVAL. */
int sp__stack_alloc(sp__stack_pool *p, int kind, size_t size, int must_guard,
                    sp__stack *out);

/* Returns a stack to the pool.  A virtual stack gives back everything below
 * its top SP_STACK_VIRTUAL_KEEP bytes. */
void sp__stack_free(sp__stack_pool *p, const sp__stack *st);

/* Hands the pool's free stacks to the process-wide list (thread exit), from
 * which other threads' pools refill before carving new slabs. */
void sp__stack_pool_fini(sp__stack_pool *p);

/* The pool's first bucket inline: the stacks of the kind and size a thread
 * spawns most (its scheduler's own stack made it the default fixed one)
 * pop and push their free list without a call; everything else goes to
 * sp__stack_alloc and sp__stack_free.  size: as for sp__stack_alloc. */
static inline int sp__stack_get(sp__stack_pool *p, int kind, size_t size, sp__stack *out)
{
    sp__stack_bucket *b = &p->b[0];
    char *top = b->free;
    if (size == 0)
        size = kind == SP_STACK_VIRTUAL ? SP_STACK_VIRTUAL_SIZE : SP_STACK_FIXED_SIZE;
    if (__builtin_expect(top && b->size == size && b->kind == kind, 1)) {
        char *base = top - size;
        b->free = *(void **)(top - sizeof(void *));
        b->nfree--;
        out->base = base;
        out->size = (uint32_t)size;
        out->kind = (uint8_t)kind;
        out->guarded = (uint8_t)*(uintptr_t *)(top - 2 * sizeof(void *));
        return 0;
    }
    return sp__stack_alloc(p, kind, size, 0, out);
}

static inline void sp__stack_put(sp__stack_pool *p, const sp__stack *st)
{
    sp__stack_bucket *b = &p->b[0];
    if (__builtin_expect(st->kind == SP_STACK_FIXED && b->size == st->size &&
                         b->kind == SP_STACK_FIXED, 1)) {
        char *top = st->base + st->size;
        *(uintptr_t *)(top - 2 * sizeof(void *)) = st->guarded;
        *(void **)(top - sizeof(void *)) = b->free;
        b->free = top;
        b->nfree++;
        return;
    }
    sp__stack_free(p, st);
}

/* 1 if an unguarded stack's canary is intact (always 1 when guarded). */
int sp__stack_canary_ok(const sp__stack *st);

size_t sp__stack_default_size(int kind);

/* ---- overflow reporting (overflow.c) ---- */

/* Answers the SIGSEGV handler: if addr lies in the guard page of the stack
 * the current thread is running on, fill in who it is and return 1. */
typedef int (*sp__overflow_lookup_fn)(void *addr, uint64_t *id,
                                      const char **name, size_t *size);

/* Installs the process-wide SIGSEGV handler (once) and gives the calling
 * thread an alternate signal stack, so an overflow can be reported from a
 * stack that still has room.  Returns 0 or -errno. */
int sp__overflow_thread_init(sp__overflow_lookup_fn lookup);
void sp__overflow_thread_fini(void);

/* Prints "spindle: stack overflow in coroutine <id> '<name>' (stack <size>
 * bytes)" with write(2) (async-signal-safe) and aborts. */
void sp__overflow_report(uint64_t id, const char *name, size_t size)
    __attribute__((noreturn));

#endif
