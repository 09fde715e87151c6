#ifndef SP_TOOLS_MICRO_H
#define SP_TOOLS_MICRO_H
/* `spindle micro`: returns the process exit status. */
int spindle_micro(int argc, char **argv);
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* cpu_set_t */
#endif
#include <sched.h>

/* The sync benchmarks (tools/micro_sync.c): chan_pingpong, skynet,
 * spawn_mn; `only` NULL for all, or one of them (others: nothing).  The
 * rows with several workers (and Go's go/2p) run on `cpus`, the CPUs the
 * command was started with, so that `taskset` confines them. */
void micro_sync(const char *only, int runs, int json, int peers, const cpu_set_t *cpus);
#endif
