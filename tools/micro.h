#ifndef SP_TOOLS_MICRO_H
#define SP_TOOLS_MICRO_H
/* `spindle micro`: returns the process exit status. */
int spindle_micro(int argc, char **argv);
#endif
