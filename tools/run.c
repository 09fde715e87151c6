/* spindle run: an unmodified blocking program on coroutines.
 *
 *   spindle run --hook [--threads-as-coroutines] [--stats] -- PROGRAM [ARGS...]
 *
 * is the same as
 *
 *   LD_PRELOAD=/path/to/libspindle_hook.so SPINDLE_HOOK_MAIN=1 \
 *       [SPINDLE_HOOK_THREADS=coroutines] [SPINDLE_HOOK_STATS=1] PROGRAM ARGS
 *
 * and exec()s the program in this process (its pid, its exit status).
 * The library is SPINDLE_HOOK_LIB if set, else the one built beside this
 * command, else the installed one.  Children the program starts inherit the
 * environment, so they run hooked too. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SP_HOOK_BUILD
#define SP_HOOK_BUILD ""
#endif
#ifndef SP_HOOK_INSTALL
#define SP_HOOK_INSTALL ""
#endif

static void usage(FILE *f)
{
    fputs("usage: spindle run --hook [--threads-as-coroutines] [--stats] -- PROGRAM [ARGS...]\n"
          "\n"
          "Runs PROGRAM with libspindle_hook preloaded and its main started as the\n"
          "first coroutine: its blocking socket calls, poll/select, sleeps and\n"
          "getaddrinfo park the coroutine instead of blocking the thread.\n"
          "\n"
          "  --hook                    preload the hook library (required)\n"
          "  --threads-as-coroutines   pthread_create starts a coroutine, not a thread\n"
          "                            (one OS thread for a thread-per-connection server)\n"
          "  --stats                   print how many waits parked, at exit\n"
          "\n"
          "The same by hand:\n"
          "  LD_PRELOAD=.../libspindle_hook.so SPINDLE_HOOK_MAIN=1 PROGRAM ARGS\n"
          "  (SPINDLE_HOOK_THREADS=coroutines, SPINDLE_HOOK_STATS=1 for the options)\n",
          f);
}

/* The library to preload, or NULL. */
static const char *find_library(void)
{
    const char *env = getenv("SPINDLE_HOOK_LIB");
    if (env && *env)
        return access(env, R_OK) == 0 ? env : NULL;
    if (*SP_HOOK_BUILD && access(SP_HOOK_BUILD, R_OK) == 0)
        return SP_HOOK_BUILD;
    if (*SP_HOOK_INSTALL && access(SP_HOOK_INSTALL, R_OK) == 0)
        return SP_HOOK_INSTALL;
    return NULL;
}

/* LD_PRELOAD with lib first (a preload already there stays, after it). */
static int set_preload(const char *lib)
{
    const char *old = getenv("LD_PRELOAD");
    if (!old || !*old)
        return setenv("LD_PRELOAD", lib, 1);
    size_t n = strlen(lib) + strlen(old) + 2;
    char *v = malloc(n);
    if (!v)
        return -1;
    snprintf(v, n, "%s:%s", lib, old);
    int rc = setenv("LD_PRELOAD", v, 1);
    free(v);
    return rc;
}

int spindle_run(int argc, char **argv)
{
    int hook = 0, threads = 0, stats = 0, i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "--hook")) {
            hook = 1;
        } else if (!strcmp(argv[i], "--threads-as-coroutines")) {
            threads = 1;
        } else if (!strcmp(argv[i], "--stats")) {
            stats = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "spindle run: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            break; /* the program, without a "--" before it */
        }
    }
    if (i >= argc) {
        fputs("spindle run: no program given\n", stderr);
        usage(stderr);
        return 2;
    }
    if (!hook) {
        fputs("spindle run: say --hook (the only way to run a program for now)\n", stderr);
        return 2;
    }
#if SP_ASAN || SP_TSAN
    /* A sanitizer-built libspindle_hook.so needs the sanitizer's runtime,
     * which only a program built with it carries, and that runtime's own
     * interceptors would be found before our hooks anyway. */
    fputs("spindle run: warning: this is a sanitizer build; its libspindle_hook.so "
          "cannot be preloaded into an ordinary program\n", stderr);
#endif
    const char *lib = find_library();
    if (!lib) {
        fprintf(stderr, "spindle run: libspindle_hook.so not found (looked at %s%s%s); "
                        "set SPINDLE_HOOK_LIB\n",
                getenv("SPINDLE_HOOK_LIB") ? "$SPINDLE_HOOK_LIB" : SP_HOOK_BUILD,
                *SP_HOOK_INSTALL ? " and " : "", SP_HOOK_INSTALL);
        return 3;
    }
    if (set_preload(lib) != 0 || setenv("SPINDLE_HOOK_MAIN", "1", 1) != 0 ||
        setenv("SPINDLE_HOOK_THREADS", threads ? "coroutines" : "threads", 1) != 0 ||
        (stats && setenv("SPINDLE_HOOK_STATS", "1", 1) != 0)) {
        perror("spindle run: setenv");
        return 1;
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "spindle run: %s: %s\n", argv[i], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
