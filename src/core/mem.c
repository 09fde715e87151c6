/* Per-thread size-class allocator for coroutine objects, save buffers and
 * backend contexts: a spawn on the hot path pops a free list, never calls
 * malloc.  Blocks are never returned to the kernel (a server's population
 * comes back), and a block freed on another thread joins that thread's list. */
#define _GNU_SOURCE
#include "core/internal.h"

#include <errno.h>
#include <sys/mman.h>

/* 1 MiB chunks: one mmap per ~7,000 coroutine objects. */
#define SP__MEM_CHUNK (1u << 20)

static int class_of(size_t size, size_t *cap)
{
    if (size <= 256) {
        size_t c = size ? (size + 7) / 8 : 1;        /* 1..32 */
        *cap = c * 8;
        return (int)c - 1;
    }
    if (size <= 512) {
        size_t c = (size - 256 + 31) / 32;           /* 1..8 */
        *cap = 256 + c * 32;
        return 31 + (int)c;
    }
    int k = 10;                                      /* 1 KiB */
    while (((size_t)1 << k) < size)
        k++;
    *cap = (size_t)1 << k;
    return 40 + (k - 10);                            /* 40..48 */
}

void *sp__mem_alloc(sp__mem *m, size_t size, size_t *cap)
{
    if (size > SP__MEM_MAX) {
        size_t len = SP__ALIGN_UP(size, sp__page_size());
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            errno = ENOMEM;
            return NULL;
        }
        *cap = len;
        return p;
    }
    int c = class_of(size, cap);
    void *p = m->free[c];
    if (p) {
        m->free[c] = *(void **)p;
        return p;
    }
    /* Small blocks (coroutines, save buffers, waiters) hold nothing wider
     * than 8 bytes, and 16-aligning them would pad every pair; the large
     * ones hold ucontext's FP area, which fxsave wants 16-aligned. */
    size_t align = *cap >= 512 ? 16 : 8;
    size_t pad = (size_t)(SP__ALIGN_UP((uintptr_t)m->chunk, align) - (uintptr_t)m->chunk);
    if (m->chunk_left >= pad + *cap) {
        m->chunk += pad;
        m->chunk_left -= pad;
    } else {
        size_t len = *cap > SP__MEM_CHUNK ? *cap : SP__MEM_CHUNK;
        void *chunk = mmap(NULL, len, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (chunk == MAP_FAILED) {
            errno = ENOMEM;
            return NULL;
        }
        /* The tail of the old chunk is abandoned: less than one block. */
        m->chunk = chunk;
        m->chunk_left = len;
        m->chunk_bytes += len;
    }
    p = m->chunk;
    m->chunk += *cap;
    m->chunk_left -= *cap;
    return p;
}

void sp__mem_free(sp__mem *m, void *p, size_t cap)
{
    if (cap > SP__MEM_MAX) {
        munmap(p, cap);
        return;
    }
    size_t real;
    int c = class_of(cap, &real);
    *(void **)p = m->free[c];
    m->free[c] = p;
}
