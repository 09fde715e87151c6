/* The program's main as the first coroutine (preloaded library only):
 * with SPINDLE_HOOK_MAIN=1 the library wraps __libc_start_main, the
 * function crt1.o's _start calls with the address of main, and hands it
 * our hooked_main instead.  That runs the real main inside sp_run, on a
 * coroutine, so every blocking call main makes parks rather than blocks.
 *
 * main's coroutine gets a virtual (lazily committed) stack as large as the
 * main thread's would be (RLIMIT_STACK), since an unmodified program
 * expects one.  When main returns, exit() runs right there, as
 * __libc_start_main would; when main calls pthread_exit, the process ends
 * with status 0 once every other coroutine has ended, as POSIX has it for
 * threads. */
#define _GNU_SOURCE
#include "hook/hook.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#if SP_HOOK_PRELOAD

typedef int (*main_fn)(int, char **, char **);

static struct {
    main_fn fn;
    int argc;
    char **argv, **envp;
} program;

/* Clamped: an unlimited RLIMIT_STACK still needs a finite reservation. */
#define SP__HOOK_MAIN_STACK_MIN (1u << 20)
#define SP__HOOK_MAIN_STACK_UNLIMITED (64u << 20)
#define SP__HOOK_MAIN_STACK_MAX (1u << 30)

static size_t main_stack_size(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return SP__HOOK_MAIN_STACK_UNLIMITED;
    if (rl.rlim_cur < SP__HOOK_MAIN_STACK_MIN)
        return SP__HOOK_MAIN_STACK_MIN;
    return rl.rlim_cur > SP__HOOK_MAIN_STACK_MAX ? SP__HOOK_MAIN_STACK_MAX : (size_t)rl.rlim_cur;
}

static void *run_main(void *unused)
{
    exit(program.fn(program.argc, program.argv, program.envp));
}

/* sp_run's own first coroutine: starts main on its big stack and waits for
 * it (it only comes back if main called pthread_exit). */
static void *launcher(void *unused)
{
    sp_co_attr attr = {.stack = SP_STACK_VIRTUAL, .stack_size = main_stack_size(),
                       .name = "main"};
    sp_co *co = sp_spawn(run_main, NULL, &attr);
    if (!co)
        sp__fatal("hook: cannot start main as a coroutine: %s", strerror(errno));
    sp_join(co, NULL);
    return NULL;
}

static int hooked_main(int argc, char **argv, char **envp)
{
    program.argc = argc;
    program.argv = argv;
    program.envp = envp;
    sp_config cfg;
    if (sp_config_init(&cfg) != 0)
        sp__fatal("hook: a SPINDLE_* variable in the environment has an unknown value");
    /* The program's main thread becomes one worker: its coroutines keep
     * the thread-locals and errno a blocking program expects (pthreads it
     * creates become coroutines of this same thread). */
    cfg.workers = 1;
    int rc = sp_run(&cfg, launcher, NULL, NULL);
    if (rc < 0)
        sp__fatal("hook: cannot run main as a coroutine: %s", strerror(-rc));
    return 0;
}

static int env_has(char **envp, const char *entry)
{
    for (; envp && *envp; envp++)
        if (!strcmp(*envp, entry))
            return 1;
    return 0;
}

int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                      void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                      void *stack_end)
{
    /* The environment follows argv's terminating NULL. */
    char **envp = argv + argc + 1;
    if (env_has(envp, "SPINDLE_HOOK_MAIN=1") && (sp__hook_mode_get() & SP__HOOK_ON)) {
        program.fn = main;
        main = hooked_main;
    }
    return SP__REAL(__libc_start_main)(main, argc, argv, init, fini, rtld_fini, stack_end);
}

#endif
