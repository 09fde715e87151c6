/* peer_swapcontext: glibc's ucontext switch, the portable baseline every
 * coroutine library is measured against.
 *
 *   switch  glibc/swapcontext  ns per one-way switch (ping-pong, 2 per trip)
 *
 * swapcontext saves and restores the signal mask with a rt_sigprocmask
 * system call on every switch; that syscall, not the register shuffle, is
 * what this row mostly measures, and why libraries hand-write their switch. */
#define _GNU_SOURCE
#include "peer.h"

#include <ucontext.h>

/* 64 KiB: the partner runs one loop, no deep calls; plenty and cheap. */
#define PARTNER_STACK_SIZE (64 * 1024)

static ucontext_t main_ctx, partner_ctx;
static volatile long partner_trips;

/* Bounces straight back to main forever; main stops resuming it when done,
 * so it never returns (uc_link stays NULL). */
static void partner(void)
{
    for (;;) {
        partner_trips++;
        swapcontext(&partner_ctx, &main_ctx);
    }
}

static double time_switch(void *arg, long ops)
{
    (void)arg;
    long trips = ops / 2;
    double t0 = bench_now_ns();
    for (long i = 0; i < trips; i++)
        swapcontext(&main_ctx, &partner_ctx);
    return bench_now_ns() - t0;
}

int main(int argc, char **argv)
{
    const char *only = peer_parse_args(argc, argv);
    if (!peer_wants(only, "switch"))
        return 0;

    void *stack = malloc(PARTNER_STACK_SIZE);
    if (!stack || getcontext(&partner_ctx) < 0) {
        bench_skip_write(stdout, "switch", "glibc/swapcontext",
                         "could not set up a ucontext");
        return 1;
    }
    partner_ctx.uc_stack.ss_sp = stack;
    partner_ctx.uc_stack.ss_size = PARTNER_STACK_SIZE;
    partner_ctx.uc_link = NULL;
    makecontext(&partner_ctx, partner, 0);

    peer_time("switch", "glibc/swapcontext", time_switch, NULL);
    free(stack); /* partner is parked inside swapcontext and never resumed */
    return 0;
}
