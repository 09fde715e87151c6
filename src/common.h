/* Small helpers shared by every layer of the runtime (not public API). */
#ifndef SP_COMMON_H
#define SP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define sp__likely(x)   __builtin_expect(!!(x), 1)
#define sp__unlikely(x) __builtin_expect(!!(x), 0)
#define sp__noinline    __attribute__((noinline))
#define sp__tls         __thread __attribute__((tls_model("initial-exec")))
#define sp__container_of(p, type, member) \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

#define SP__ALIGN_UP(x, a)   (((x) + ((a) - 1)) & ~((uintptr_t)(a) - 1))
#define SP__ALIGN_DOWN(x, a) ((x) & ~((uintptr_t)(a) - 1))

/* API misuse or a broken invariant: name it and abort, as libaco does.  The
 * library never prints otherwise. */
#define sp__fatal(...)                                   \
    do {                                                 \
        fprintf(stderr, "spindle: " __VA_ARGS__);        \
        fputc('\n', stderr);                             \
        abort();                                         \
    } while (0)

size_t sp__page_size(void);

#endif
