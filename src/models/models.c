/* The table of server models.  Each model is a weak reference: its file
 * may not be built yet, and then the table says what will bring it. */
#include "models/model.h"

#include <string.h>

#define SP__MODEL(n) extern const sp_model sp_model_##n __attribute__((weak))
SP__MODEL(fork);
SP__MODEL(prefork);
SP__MODEL(thread);
SP__MODEL(pool);
SP__MODEL(epoll);
SP__MODEL(callback);
SP__MODEL(stackless);
SP__MODEL(coro);
SP__MODEL(mn);
SP__MODEL(reuseport);
SP__MODEL(uring);

const sp_model_entry sp_model_table[] = {
    {"fork", &sp_model_fork, "issue #5"},
    {"prefork", &sp_model_prefork, "issue #5"},
    {"thread", &sp_model_thread, "issue #5"},
    {"pool", &sp_model_pool, "issue #5"},
    {"epoll", &sp_model_epoll, "issue #5"},
    {"callback", &sp_model_callback, "issue #5"},
    {"stackless", &sp_model_stackless, "issue #5"},
    {"coro", &sp_model_coro, "issue #5"},
    {"mn", &sp_model_mn, "issue #4"},
    {"reuseport", &sp_model_reuseport, "issue #5"},
    {"uring", &sp_model_uring, "issue #5"},
    {NULL, NULL, NULL},
};

const sp_model_entry *sp_model_find(const char *name)
{
    for (const sp_model_entry *e = sp_model_table; e->name; e++)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}
