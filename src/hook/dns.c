/* getaddrinfo: inside a coroutine, the lookup runs on the offload pool
 * (sp_getaddrinfo) while the coroutine parks; a numeric address is
 * answered on the spot without a helper thread.  The result is libc's own,
 * freed with freeaddrinfo as usual. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <netdb.h>

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    sp_sched *s = sp__hook_sched();
    if (!s)
        return SP__REAL(getaddrinfo)(node, service, hints, res);
    /* No depth guard: the wait is inside sp_getaddrinfo, and other
     * coroutines run hooked calls meanwhile. */
    return sp_getaddrinfo(node, service, hints, res);
}
