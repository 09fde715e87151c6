/* spindle: the command.  Thin: parses the subcommand and hands over. */
#include <stdio.h>
#include <string.h>

#include "micro.h"

/* Each subcommand lives in its own file (serve.c, load.c, sweep.c, run.c);
 * a weak reference stays NULL until that file is built. */
int spindle_serve(int argc, char **argv) __attribute__((weak));
int spindle_load(int argc, char **argv) __attribute__((weak));
int spindle_sweep(int argc, char **argv) __attribute__((weak));
int spindle_run(int argc, char **argv) __attribute__((weak));

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv); /* NULL: not built yet */
    const char *summary;
    const char *pending; /* not built yet: what will bring it */
} subcommand;

static const subcommand commands[] = {
    {"micro", spindle_micro,
     "switch / spawn / memory / timer / echo micro-benchmarks [--peers] [--json]", NULL},
    {"serve", spindle_serve, "serve HTTP/1.1 under one server model",
     "the server models (issue #5)"},
    {"load", spindle_load, "the load generator", "the load generator (issue #6)"},
    {"sweep", spindle_sweep, "requests/s of every model as concurrency climbs",
     "the sweep (issue #6)"},
    {"run", spindle_run, "run an unmodified blocking program on coroutines",
     "the hook library (issue #7)"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fputs("usage: spindle <command> [options]\n\ncommands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-6s %s%s\n", commands[i].name, commands[i].summary,
                commands[i].run ? "" : " (not built yet)");
    fputs("\n`spindle <command> --help` for a command's options.\n", f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (!commands[i].run) {
            fprintf(stderr, "spindle %s: not built yet; it comes with %s.\n",
                    commands[i].name, commands[i].pending);
            return 3;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "spindle: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
