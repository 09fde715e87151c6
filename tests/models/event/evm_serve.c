/* evm_serve: runs one of the event-loop models (epoll, callback, stackless)
 * by itself, for the client tests of this folder.  It names the models
 * directly, so they are linked in whatever `spindle serve` does with its
 * table, and it parses only what the tests need.
 *
 * usage: evm_serve MODEL [--trigger level|edge] [--root DIR] [--cgi-dir DIR]
 *                  [--header-timeout-ms N] [--idle-timeout-ms N]
 *                  [--max-body-bytes N] [--nofile N]
 * Prints "READY <port> <model>"; SIGTERM stops it (exit 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "models/model.h"

extern const sp_model sp_model_epoll, sp_model_callback, sp_model_stackless;

int main(int argc, char **argv)
{
    const sp_model *models[] = {&sp_model_epoll, &sp_model_callback,
                                &sp_model_stackless};
    const sp_model *m = NULL;
    sp_server_opts o;

    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.backlog = 4096;
    o.header_timeout_ms = 10000;
    o.idle_timeout_ms = 15000;
    o.limits = sp_http_default_limits;
    o.quiet = 1;
    for (size_t i = 0; argc > 1 && i < sizeof models / sizeof models[0]; i++)
        if (!strcmp(argv[1], models[i]->name))
            m = models[i];
    if (!m) {
        fprintf(stderr, "usage: evm_serve epoll|callback|stackless [options]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];

        if (!strcmp(k, "--trigger"))
            o.trigger_level = !strcmp(v, "level");
        else if (!strcmp(k, "--root"))
            o.root = v;
        else if (!strcmp(k, "--cgi-dir"))
            o.cgi_dir = v;
        else if (!strcmp(k, "--header-timeout-ms"))
            o.header_timeout_ms = atoll(v);
        else if (!strcmp(k, "--idle-timeout-ms"))
            o.idle_timeout_ms = atoll(v);
        else if (!strcmp(k, "--max-body-bytes"))
            o.limits.max_body = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--nofile")) { /* a low descriptor limit */
            struct rlimit rl = {(rlim_t)atoll(v), (rlim_t)atoll(v)};

            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
                perror("evm_serve: setrlimit");
                return 2;
            }
        }
        else {
            fprintf(stderr, "evm_serve: unknown option %s\n", k);
            return 2;
        }
    }
    return m->serve(&o);
}
