/* spindle serve: parses the options, prepares the process (descriptor
 * limit, signals) and hands over to the chosen model (src/models). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/model.h"
#include "models/server.h"

/* Defaults a reader of --help can check against nginx's: shorter, since a
 * lab server should not hold sockets for a minute after a benchmark. */
#define DEFAULT_PORT 8080
#define DEFAULT_BACKLOG 4096 /* the kernel clamps it to net.core.somaxconn */
#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define DEFAULT_IDLE_TIMEOUT_MS 15000
/* Bounds of the numeric options: past them a value is a typo, not a wish. */
#define MAX_WORKERS 4096
#define MAX_TIMEOUT_MS (24LL * 3600 * 1000)
#define MIN_HEADER_BYTES 256 /* a Host line and a few fields */
#define MAX_HEADER_BYTES (1LL << 20) /* each connection buffers this much */
#define MAX_BODY_BYTES (1LL << 30)

/* Exit statuses: 2 for a usage error, 3 for a model that is not built
 * (the test suite skips on it), 1 for a failure at run time. */
#define EXIT_USAGE 2
#define EXIT_NOT_BUILT 3

enum {
    OPT_MODEL = 256, OPT_HOST, OPT_PORT, OPT_WORKERS, OPT_ROOT, OPT_CGI_DIR,
    OPT_HEADER_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_MAX_HEADER, OPT_MAX_BODY,
    OPT_TRIGGER, OPT_STACK, OPT_CTX, OPT_BACKLOG, OPT_HELP,
};

static const struct option options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"root", required_argument, NULL, OPT_ROOT},
    {"cgi-dir", required_argument, NULL, OPT_CGI_DIR},
    {"header-timeout-ms", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"idle-timeout-ms", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
    {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
    {"trigger", required_argument, NULL, OPT_TRIGGER},
    {"stack", required_argument, NULL, OPT_STACK},
    {"ctx", required_argument, NULL, OPT_CTX},
    {"backlog", required_argument, NULL, OPT_BACKLOG},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fputs("usage: spindle serve --model NAME [options]\n\n"
          "Serves HTTP/1.1 (GET / hello, /static/, /sleep?ms=N, /cgi-bin/) under one\n"
          "server model.  Prints \"READY <port> <model>\" once listening; SIGTERM or\n"
          "SIGINT stops accepting, finishes the requests in flight, and exits 0.\n\n"
          "models:\n", f);
    for (const sp_model_entry *e = sp_model_table; e->name; e++) {
        if (e->model && e->model->serve)
            fprintf(f, "  %-10s %s\n", e->name, e->model->summary);
        else
            fprintf(f, "  %-10s (not built yet: comes with %s)\n", e->name, e->pending);
    }
    fprintf(f,
            "\noptions:\n"
            "  --model NAME             the server model (required)\n"
            "  --host H                 listen address (default 127.0.0.1; '*' for any)\n"
            "  --port P                 listen port, 0 = the kernel chooses (default %d)\n"
            "  --workers N              processes/threads/shards where the model has them\n"
            "  --root DIR               serve DIR under /static/ (default: 404)\n"
            "  --cgi-dir DIR            run scripts of DIR under /cgi-bin/ (default: 404)\n"
            "  --header-timeout-ms N    a request head must arrive within N ms (default %d)\n"
            "  --idle-timeout-ms N      close keep-alive connections idle N ms (default %d)\n"
            "  --max-header-bytes N     header section limit, 431 above (default %u)\n"
            "  --max-body-bytes N       request body limit, 413 above (default %u)\n"
            "  --trigger level|edge     epoll triggering (default edge)\n"
            "  --stack fixed|virtual|shared   coroutine stacks (default fixed)\n"
            "  --ctx asm|ucontext|sjlj  coroutine context switch (default asm)\n"
            "  --backlog N              listen backlog (default %d)\n"
            "  --help                   this text\n",
            DEFAULT_PORT, DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS,
            SP_HTTP_HEADER_BYTES_MAX_DEFAULT, SP_HTTP_BODY_MAX_DEFAULT, DEFAULT_BACKLOG);
}

/* Says what is wrong with the command line; returns the usage status. */
__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;

    fputs("spindle serve: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(`spindle serve --help` lists the options)\n", stderr);
    return EXIT_USAGE;
}

/* A decimal integer in [lo, hi], the whole string; false otherwise. */
static bool parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    if (!*s || !((*s >= '0' && *s <= '9') || *s == '-'))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* One descriptor per connection: take all the kernel allows. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Descriptors 0-2 open: otherwise a socket or a pipe would get number 1,
 * and a CGI script's dup2 onto its stdout, or a stray printf, would hit it. */
static void ensure_std_fds(void)
{
    int fd;

    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
    if (fd > 2)
        close(fd);
}

/* Applies one option with a value.  Returns 0, or the exit status. */
static int apply(int opt, const char *name, const char *val, sp_server_opts *o,
                 const char **model)
{
    long long v;

    switch (opt) {
    case OPT_MODEL:
        *model = val;
        return 0;
    case OPT_HOST:
        if (!*val)
            return bad("%s: empty address", name);
        o->host = val;
        return 0;
    case OPT_PORT:
        if (!parse_int(val, 0, 65535, &v))
            return bad("%s: '%s' is not a port (0-65535)", name, val);
        o->port = (int)v;
        return 0;
    case OPT_WORKERS:
        if (!parse_int(val, 1, MAX_WORKERS, &v))
            return bad("%s: '%s' is not a count of workers (1-4096)", name, val);
        o->workers = (int)v;
        return 0;
    case OPT_BACKLOG:
        if (!parse_int(val, 1, INT_MAX, &v))
            return bad("%s: '%s' is not a positive count", name, val);
        o->backlog = (int)v;
        return 0;
    case OPT_ROOT:
    case OPT_CGI_DIR:
        if (!is_dir(val))
            return bad("%s: '%s' is not a directory", name, val);
        if (opt == OPT_ROOT)
            o->root = val;
        else
            o->cgi_dir = val;
        return 0;
    case OPT_HEADER_TIMEOUT:
    case OPT_IDLE_TIMEOUT:
        if (!parse_int(val, 1, MAX_TIMEOUT_MS, &v))
            return bad("%s: '%s' is not a timeout in ms (1 to a day)", name, val);
        if (opt == OPT_HEADER_TIMEOUT)
            o->header_timeout_ms = v;
        else
            o->idle_timeout_ms = v;
        return 0;
    case OPT_MAX_HEADER:
        if (!parse_int(val, MIN_HEADER_BYTES, MAX_HEADER_BYTES, &v))
            return bad("%s: '%s' is not a size in bytes (256 to 1 MiB)", name, val);
        o->limits.max_header_bytes = (size_t)v;
        return 0;
    case OPT_MAX_BODY:
        if (!parse_int(val, 0, MAX_BODY_BYTES, &v))
            return bad("%s: '%s' is not a size in bytes (0 to 1 GiB)", name, val);
        o->limits.max_body = (uint64_t)v;
        return 0;
    case OPT_TRIGGER:
        if (strcmp(val, "level") && strcmp(val, "edge"))
            return bad("%s: '%s' is not level or edge", name, val);
        o->trigger_level = !strcmp(val, "level");
        o->runtime.epoll_level = o->trigger_level;
        return 0;
    case OPT_STACK:
        if (!strcmp(val, "fixed"))
            o->runtime.stack = SP_STACK_FIXED;
        else if (!strcmp(val, "virtual"))
            o->runtime.stack = SP_STACK_VIRTUAL;
        else if (!strcmp(val, "shared"))
            o->runtime.stack = SP_STACK_SHARED;
        else
            return bad("%s: '%s' is not fixed, virtual or shared", name, val);
        return 0;
    case OPT_CTX:
        if (!strcmp(val, "asm"))
            o->runtime.ctx = SP_CTX_ASM;
        else if (!strcmp(val, "ucontext"))
            o->runtime.ctx = SP_CTX_UCONTEXT;
        else if (!strcmp(val, "sjlj"))
            o->runtime.ctx = SP_CTX_SJLJ;
        else
            return bad("%s: '%s' is not asm, ucontext or sjlj", name, val);
        return 0;
    }
    return EXIT_USAGE;
}

int spindle_serve(int argc, char **argv)
{
    const char *model = NULL;
    const sp_model_entry *e;
    sp_server_opts o;
    char name[32];
    int opt, rc;

    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = DEFAULT_PORT;
    o.backlog = DEFAULT_BACKLOG;
    o.header_timeout_ms = DEFAULT_HEADER_TIMEOUT_MS;
    o.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    o.limits = sp_http_default_limits;
    o.quiet = 1;
    if (sp_config_init(&o.runtime) < 0) {
        fputs("spindle serve: a SPINDLE_* environment variable has an unknown value\n",
              stderr);
        return EXIT_USAGE;
    }

    opterr = 0; /* our messages name the option */
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == OPT_HELP) {
            usage(stdout);
            return 0;
        }
        if (opt == '?') {
            const char *arg = argv[optind - 1];

            if (optopt)
                return bad("%s: needs a value", arg);
            return bad("unknown option '%s'", arg);
        }
        snprintf(name, sizeof name, "--%s", options[opt - OPT_MODEL].name);
        rc = apply(opt, name, optarg, &o, &model);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return bad("unexpected argument '%s'", argv[optind]);
    if (!model)
        return bad("--model is required");
    e = sp_model_find(model);
    if (!e) {
        fprintf(stderr, "spindle serve: unknown model '%s'; the models are:", model);
        for (e = sp_model_table; e->name; e++)
            fprintf(stderr, " %s", e->name);
        fputc('\n', stderr);
        return EXIT_USAGE;
    }
    if (!e->model || !e->model->serve) {
        fprintf(stderr, "spindle serve: model '%s' is not built yet; it comes with %s.\n",
                e->name, e->pending);
        return EXIT_NOT_BUILT;
    }

    ensure_std_fds();
    raise_nofile();
    rc = sp_server_signals_init();
    if (rc < 0) {
        fprintf(stderr, "spindle serve: signals: %s\n", strerror(-rc));
        return 1;
    }
    return e->model->serve(&o);
}
