/* The server models (layer "models"): one file per model, each serving the
 * same HTTP/1.1 service (src/http) with its own way of waiting.  Internal to
 * spindle: `spindle serve` drives them.
 *
 * A model file defines one `const sp_model sp_model_<name>` and nothing else
 * global; models.c lists them all (as weak references, so a model that is
 * not built yet is reported as such instead of breaking the build). */
#ifndef SP_MODELS_MODEL_H
#define SP_MODELS_MODEL_H

#include <spindle.h>
#include <spindle/http.h>
#include <stdint.h>

typedef struct sp_server_opts {
    const char *host;          /* listen address; default 127.0.0.1 */
    int port;                  /* 0: the kernel chooses (printed on READY) */
    int backlog;               /* listen(2) backlog; default 4096 */
    int workers;               /* processes/threads/shards where it applies */
    const char *root;          /* --root for /static/ (NULL: 404) */
    const char *cgi_dir;       /* --cgi-dir for /cgi-bin/ (NULL: 404) */
    int64_t header_timeout_ms; /* whole request head, armed once a request */
    int64_t idle_timeout_ms;   /* keep-alive connection with no request */
    sp_http_limits limits;
    int trigger_level;         /* epoll model: level-triggered (else edge) */
    sp_config runtime;         /* coroutine models: stack kind, ctx, poller */
    int quiet;                 /* no access log (the default; none is kept) */
} sp_server_opts;

typedef struct sp_model {
    const char *name;
    const char *summary;       /* one line for `spindle serve --help` */
    /* Serves until SIGTERM/SIGINT, then stops accepting, finishes the
     * requests in flight, and returns the exit status (0).  Prints
     * "READY <port>" on stdout, flushed, once it accepts connections. */
    int (*serve)(const sp_server_opts *o);
} sp_model;

/* Every model in the order `spindle serve --help` lists them; ends with a
 * NULL entry.  An entry whose model is not built has serve == NULL. */
typedef struct sp_model_entry {
    const char *name;
    const sp_model *model;     /* NULL: not built yet */
    const char *pending;       /* what brings it, when not built */
} sp_model_entry;

extern const sp_model_entry sp_model_table[];

/* Finds a model by name; NULL if unknown. */
const sp_model_entry *sp_model_find(const char *name);

#endif
