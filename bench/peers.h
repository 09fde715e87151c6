/* The peer driver: runs the programs of bench/peers/ (peer_boost_context,
 * peer_st, ...) one after the other and prints their rows beside spindle's
 * own, through bench_print, so `spindle micro --peers` shows one table.
 *
 * A peer program prints ROW/SKIP lines (bench.h) on stdout and takes one
 * option, `--bench NAME`. The driver never pins anything: the caller decides
 * about taskset, and calls this while none of its own benchmarks runs. */
#ifndef SP_BENCH_PEERS_H
#define SP_BENCH_PEERS_H

#include <stddef.h>
#include <stdio.h>

/* One row a peer program is expected to print. */
typedef struct bench_peer_row {
    const char *bench; /* switch, spawn, idle_memory */
    const char *impl;  /* boost/fcontext, st/cond, ... */
} bench_peer_row;

#define BENCH_PEER_MAX_ROWS 4

/* A peer program, the Debian package its library comes from, and the rows
 * it prints (the array ends at the first row whose bench is NULL). */
typedef struct bench_peer {
    const char *program; /* file name: peer_st */
    const char *package; /* libst-dev; "" for glibc */
    bench_peer_row rows[BENCH_PEER_MAX_ROWS];
} bench_peer;

/* Every known peer, in the order they are run; ends with a NULL program. */
extern const bench_peer bench_peer_list[];
extern const int bench_peer_count;

/* Finds p's program in $SPINDLE_PEER_DIR, then the build folder
 * (SP_PEER_BUILD_DIR), then the install folder (SP_PEER_INSTALL_DIR).
 * Returns path (filled in) when found, NULL when not. */
const char *bench_peer_find(const bench_peer *p, char *path, size_t len);

/* Why p's program cannot be found: the reason its build marker
 * (peer_<name>.skip, bench/peers/CMakeLists.txt) gives, or else one that
 * names p's package; fit for a SKIP line (bench_peer_clean applied). */
void bench_peer_why_missing(const bench_peer *p, char *why, size_t len);

/* Makes s fit inside a JSON string that bench_print_skip does not escape:
 * quotes, backslashes and control characters become '. */
void bench_peer_clean(char *s);

/* Runs the peers that have rows of bench `only_bench` with `--bench
 * only_bench`, or, when NULL, every peer, one bench at a time so the rows
 * come out grouped by bench (a peer with several benches runs once each).
 * Prints their rows on out (a table line each, or JSON with json != 0). A
 * missing program, one that exits non-zero, crashes or outlives its time
 * limit, or a row it did not print, becomes a SKIP line that says why; the
 * driver carries on. Returns the number of ROW lines printed (SKIPs not
 * counted). */
int bench_peers_run(const char *only_bench, int json, FILE *out);

#endif
