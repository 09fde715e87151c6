/* spindle: the command.  Thin: parses the subcommand and hands over. */
#include <stdio.h>
#include <string.h>

#include "micro.h"

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *pending; /* not built yet: what will bring it */
} subcommand;

static const subcommand commands[] = {
    {"micro", spindle_micro, "switch / spawn / memory micro-benchmarks [--peers] [--json]", NULL},
    {"serve", NULL, "serve HTTP/1.1 under one server model",
     "the HTTP core and the server models (issue #5)"},
    {"load", NULL, "the load generator",
     "the load generator (issue #6), on the netpoller (issue #3)"},
    {"sweep", NULL, "requests/s of every model as concurrency climbs",
     "the sweep (issue #6)"},
    {"run", NULL, "run an unmodified blocking program on coroutines",
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
