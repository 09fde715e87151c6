#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_summarize(bench_row *row, double *samples, int runs)
{
    qsort(samples, (size_t)runs, sizeof *samples, cmp_double);
    row->runs = runs;
    row->min = samples[0];
    row->max = samples[runs - 1];
    row->value = runs % 2 ? samples[runs / 2]
                          : (samples[runs / 2 - 1] + samples[runs / 2]) / 2;
}

void bench_print_header(FILE *out, int json)
{
    if (json)
        return;
    fprintf(out, "%-14s %-22s %12s %12s %12s %-9s %s\n", "bench", "impl",
            "median", "min", "max", "unit", "runs");
}

void bench_print(FILE *out, const bench_row *r, int json)
{
    if (json) {
        fprintf(out, "{\"bench\":\"%s\",\"impl\":\"%s\",\"value\":%.6g,"
                     "\"unit\":\"%s\",\"min\":%.6g,\"max\":%.6g,\"runs\":%d",
                r->bench, r->impl, r->value, r->unit, r->min, r->max, r->runs);
        if (r->n)
            fprintf(out, ",\"n\":%ld", r->n);
        fputs("}\n", out);
    } else {
        fprintf(out, "%-14s %-22s %12.4g %12.4g %12.4g %-9s %d", r->bench,
                r->impl, r->value, r->min, r->max, r->unit, r->runs);
        if (r->n)
            fprintf(out, "  (n=%ld)", r->n);
        fputc('\n', out);
    }
    fflush(out);
}

void bench_print_skip(FILE *out, const char *bench, const char *impl,
                      const char *why, int json)
{
    if (json)
        fprintf(out, "{\"bench\":\"%s\",\"impl\":\"%s\",\"skipped\":\"%s\"}\n",
                bench, impl, why);
    else
        fprintf(out, "%-14s %-22s skipped: %s\n", bench, impl, why);
    fflush(out);
}

void bench_row_write(FILE *out, const bench_row *r)
{
    fprintf(out, "ROW %s %s %s %.9g %.9g %.9g %d %ld\n", r->bench, r->impl,
            r->unit, r->value, r->min, r->max, r->runs, r->n);
    fflush(out);
}

void bench_skip_write(FILE *out, const char *bench, const char *impl, const char *why)
{
    fprintf(out, "SKIP %s %s %s\n", bench, impl, why);
    fflush(out);
}

int bench_row_parse(const char *line, bench_row *r, char *why, size_t whylen)
{
    memset(r, 0, sizeof *r);
    if (sscanf(line, "ROW %31s %47s %15s %lf %lf %lf %d %ld", r->bench, r->impl,
               r->unit, &r->value, &r->min, &r->max, &r->runs, &r->n) == 8)
        return 1;
    int off = 0;
    if (sscanf(line, "SKIP %31s %47s %n", r->bench, r->impl, &off) == 2 && off > 0) {
        snprintf(why, whylen, "%s", line + off);
        why[strcspn(why, "\n")] = 0;
        return 2;
    }
    return 0;
}

/* smaps_rollup walks the page tables, so it is exact; statm reads the
 * kernel's per-CPU RSS counters, which recent kernels update in batches and
 * which were seen 8 bytes a coroutine off at a million coroutines. */
long bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (f) {
        char line[256];
        long kb = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Rss: %ld kB", &kb) == 1)
                break;
        fclose(f);
        if (kb >= 0)
            return kb * 1024;
    }
    f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

int bench_runs(int def)
{
    const char *e = getenv("SPINDLE_BENCH_RUNS");
    int n = e ? atoi(e) : def;
    if (n < 1)
        n = 1;
    if (n > BENCH_MAX_RUNS)
        n = BENCH_MAX_RUNS;
    return n;
}
