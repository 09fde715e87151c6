/* peer_pthread: the kernel-thread baseline for spawn.
 *
 *   spawn  pthread/create  ns for pthread_create + pthread_join of a thread
 *                          that returns at once (default attributes)
 *
 * Default attributes on purpose: that is what a thread-per-connection server
 * does, and glibc then recycles the 8 MiB stacks from its cache, so the row
 * is clone + scheduling + join, not mmap. */
#define _GNU_SOURCE
#include "peer.h"

#include <pthread.h>

static void *returns_at_once(void *arg)
{
    return arg;
}

static double time_spawn(void *arg, long ops)
{
    (void)arg;
    double t0 = bench_now_ns();
    for (long i = 0; i < ops; i++) {
        pthread_t t;
        int err = pthread_create(&t, NULL, returns_at_once, NULL);
        if (err) {
            fprintf(stderr, "peer_pthread: pthread_create: %s\n", strerror(err));
            exit(1);
        }
        pthread_join(t, NULL);
    }
    return bench_now_ns() - t0;
}

int main(int argc, char **argv)
{
    const char *only = peer_parse_args(argc, argv);
    if (peer_wants(only, "spawn"))
        peer_time("spawn", "pthread/create", time_spawn, NULL);
    return 0;
}
