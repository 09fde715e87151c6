#include "core/internal.h"

#include <errno.h>
#include <string.h>

static const char *const ctx_names[] = {"asm", "ucontext", "sjlj"};
static const char *const stack_names[] = {"default", "fixed", "virtual", "shared"};
static const char *const switch_names[] = {"direct", "star"};
static const char *const fpenv_names[] = {"coroutine", "shared"};
static const char *const poll_names[] = {"default", "epoll", "uring"};
static const char *const trigger_names[] = {"edge", "level"};

const char *sp_ctx_name(sp_ctx_kind k)
{
    return (unsigned)k < 3 ? ctx_names[k] : "?";
}

const char *sp_stack_name(sp_stack_kind k)
{
    return (unsigned)k < 4 ? stack_names[k] : "?";
}

static int lookup(const char *v, const char *const *names, int n, int first)
{
    for (int i = first; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

int sp_config_init(sp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->ctx = SP_CTX_ASM;
    cfg->switch_mode = SP_SWITCH_DIRECT;
    cfg->stack = SP_STACK_FIXED;
    const char *v;
    int i;
    if ((v = getenv("SPINDLE_CTX")) && *v) {
        if ((i = lookup(v, ctx_names, 3, 0)) < 0)
            return -EINVAL;
        cfg->ctx = (sp_ctx_kind)i;
    }
    if ((v = getenv("SPINDLE_STACK")) && *v) {
        if ((i = lookup(v, stack_names, 4, 1)) < 0)
            return -EINVAL;
        cfg->stack = (sp_stack_kind)i;
    }
    if ((v = getenv("SPINDLE_SWITCH")) && *v) {
        if ((i = lookup(v, switch_names, 2, 0)) < 0)
            return -EINVAL;
        cfg->switch_mode = (sp_switch_mode)i;
    }
    if ((v = getenv("SPINDLE_FPENV")) && *v) {
        if ((i = lookup(v, fpenv_names, 2, 0)) < 0)
            return -EINVAL;
        cfg->fpenv_shared = i;
    }
    if ((v = getenv("SPINDLE_POLL")) && *v) {
        if ((i = lookup(v, poll_names, 3, 0)) < 0)
            return -EINVAL;
        cfg->poller = (sp_poll_kind)i;
    }
    if ((v = getenv("SPINDLE_EPOLL")) && *v) {
        if ((i = lookup(v, trigger_names, 2, 0)) < 0)
            return -EINVAL;
        cfg->epoll_level = i;
    }
    return 0;
}
