#ifndef SP_TOOLS_MICRO_H
#define SP_TOOLS_MICRO_H
/* `spindle micro`: returns the process exit status. */
int spindle_micro(int argc, char **argv);
/* The sync benchmarks (tools/micro_sync.c): chan_pingpong, skynet,
 * spawn_mn; `only` NULL for all, or one of them (others: nothing). */
void micro_sync(const char *only, int runs, int json, int peers);
#endif
