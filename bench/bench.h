/* Shared by spindle's micro-benchmarks and the peer programs in bench/peers:
 * timing, the median-with-spread summary, and the output contract of
 * shared/BENCH.md (a human table, or one JSON object per line).
 *
 * Peer programs print rows in the line format of bench_row_write(); the
 * `spindle micro` driver reads them back with bench_row_parse() and prints
 * them beside its own, so every figure goes through one printer. */
#ifndef SP_BENCH_H
#define SP_BENCH_H

#include <stdio.h>
#include <stdint.h>
#include <time.h>

#define BENCH_MAX_RUNS 64

typedef struct bench_row {
    char bench[32];  /* what is measured: switch, spawn, idle_memory, ... */
    char impl[48];   /* spindle/<variant> or <peer>/<variant> */
    char unit[16];   /* ns/op, bytes/co, msg/s, ms */
    double value;    /* the median */
    double min, max;
    int runs;
    long n;          /* population size where it matters (idle_memory); else 0 */
} bench_row;

static inline double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Raises the inexact exception flag (an SSE division that rounds), for the
 * switch -fpflags rows: two contexts whose MXCSR flags differ. */
static inline void bench_raise_inexact(void)
{
    volatile double one = 1.0, three = 3.0;
    volatile double q = one / three;
    (void)q;
}

/* Keeps the compiler from deleting a computation whose result is unused. */
#define bench_keep(x) __asm__ volatile("" : : "r"(x) : "memory")

/* Sorts samples[0..runs) and fills row->value/min/max/runs. */
void bench_summarize(bench_row *row, double *samples, int runs);

/* Prints one row: an aligned table line, or one JSON object (json != 0). */
void bench_print(FILE *out, const bench_row *row, int json);
/* Prints the table header (nothing in JSON mode). */
void bench_print_header(FILE *out, int json);
/* A peer or variant that could not be measured, with the reason: a table
 * line, or {"bench":..,"impl":..,"skipped":"why"} in JSON mode. */
void bench_print_skip(FILE *out, const char *bench, const char *impl,
                      const char *why, int json);

/* The line format peers write on stdout and the driver reads:
 *   ROW <bench> <impl> <unit> <value> <min> <max> <runs> <n>
 *   SKIP <bench> <impl> <reason to end of line>
 * bench_row_parse returns 1 for a ROW, 2 for a SKIP (reason copied to why),
 * 0 for any other line. */
void bench_row_write(FILE *out, const bench_row *row);
void bench_skip_write(FILE *out, const char *bench, const char *impl, const char *why);
int bench_row_parse(const char *line, bench_row *row, char *why, size_t whylen);

/* Resident set size of this process in bytes (from /proc/self/statm). */
long bench_rss_bytes(void);

/* Number of repetitions for the median: $SPINDLE_BENCH_RUNS or def. */
int bench_runs(int def);

#endif
