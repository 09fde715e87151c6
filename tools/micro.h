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
/* The bare switch (tools/micro_jump.c): ns per one-way switch between
 * two contexts with no scheduler, iters round trips; fp: keep the FP
 * control words per context, as the default switch does.  -1 on failure. */
double micro_jump(long iters, int fp);

void micro_sync(const char *only, int runs, int json, int peers, const cpu_set_t *cpus);
#endif
