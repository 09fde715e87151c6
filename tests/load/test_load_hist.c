/* The latency histogram: its error bound over the whole range, percentiles
 * of known distributions, merging across threads. */
#include "sp_test.h"

#include <math.h>
#include <spindle/load.h>

/* The bound the header promises: |reported - v| <= v / 256. */
#define BOUND (1.0 / (2.0 * SP_HIST_SUB))

static sp_hist *new_hist(void)
{
    sp_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    sp_hist_init(h);
    return h;
}

/* A deterministic generator: the same sequence on every machine. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static double rng01(void) { return (double)(rng() >> 11) / 9007199254740992.0; }

static void check_bound(uint64_t v)
{
    unsigned i = sp_hist_index(v);
    uint64_t lo, hi;
    sp_hist_bucket_range(i, &lo, &hi);
    if (v < lo || v > hi)
        fail_msg("%llu landed in bucket %u = [%llu, %llu]", (unsigned long long)v, i,
                 (unsigned long long)lo, (unsigned long long)hi);
    double mid = ((double)lo + (double)hi) / 2;
    double err = fabs(mid - (double)v);
    if (err > (double)v * BOUND + 1e-9)
        fail_msg("%llu reported as %.1f: relative error %.5f%% over the bound %.5f%%",
                 (unsigned long long)v, mid, 100 * err / (double)v, 100 * BOUND);
}

/* Every bucket boundary (the worst cases) and random values, 1 ns to the
 * top, checked against the bound; and the buckets tile the range. */
static void test_error_bound_whole_range(void **state)
{
    uint64_t prev_hi = 0;
    for (unsigned i = 0; i < SP_HIST_NBUCKETS; i++) {
        uint64_t lo, hi;
        sp_hist_bucket_range(i, &lo, &hi);
        if (i && lo != prev_hi + 1)
            fail_msg("bucket %u starts at %llu, the last ended at %llu", i,
                     (unsigned long long)lo, (unsigned long long)prev_hi);
        assert_int_equal(sp_hist_index(lo), i);
        assert_int_equal(sp_hist_index(hi), i);
        check_bound(lo);
        check_bound(hi);
        prev_hi = hi;
    }
    assert_true(prev_hi == SP_HIST_MAX_NS);
    assert_true(SP_HIST_MAX_NS >= 60 * UINT64_C(1000000000)); /* 60 s is in range */
    for (int k = 0; k < 200000; k++) {
        /* Log-uniform from 1 us to 60 s. */
        double v = 1e3 * pow(6e7, rng01());
        check_bound((uint64_t)v);
    }
}

/* Through the public path: one value recorded reports within the bound as
 * every percentile, from 1 us to 60 s. */
static void test_single_values_report_within_bound(void **state)
{
    sp_hist *h = new_hist();
    for (double v = 1000; v <= 60e9; v *= 1.0137) {
        sp_hist_init(h);
        sp_hist_record(h, (uint64_t)v);
        sp_hist_record(h, (uint64_t)v + 1);
        uint64_t p = sp_hist_percentile(h, 50);
        double rel = fabs((double)p - v) / v;
        if (rel > BOUND + 1e-6)
            fail_msg("p50 of %.0f ns reported as %llu (%.4f%%)", v, (unsigned long long)p,
                     100 * rel);
    }
    free(h);
}

/* Uniform 1..100,000 us: percentile p is p% of the range, within 1%. */
static void test_uniform_percentiles(void **state)
{
    sp_hist *h = new_hist();
    for (uint64_t us = 1; us <= 100000; us++)
        sp_hist_record(h, us * 1000);
    assert_int_equal(h->count, 100000);
    const double ps[] = {1, 10, 50, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double want = ps[i] / 100 * 100000 * 1000;
        double got = (double)sp_hist_percentile(h, ps[i]);
        if (fabs(got - want) > want * 0.01)
            fail_msg("uniform p%g: %.0f ns, expected %.0f within 1%%", ps[i], got, want);
    }
    assert_int_equal(sp_hist_percentile(h, 100), 100000000);
    assert_int_equal(sp_hist_percentile(h, 0), 1000);
    double mean = sp_hist_mean(h);
    assert_true(fabs(mean - 50000.5e3) < 1);
    /* Uniform over [0, L]: stdev L / sqrt(12). */
    double sd = sp_hist_stdev(h), want_sd = 100e6 / sqrt(12);
    if (fabs(sd - want_sd) > want_sd * 0.01)
        fail_msg("uniform stdev %.0f, expected %.0f", sd, want_sd);
    /* Uniform: mean +/- stdev holds 2/sqrt(12) = 57.7% of it. */
    double f = sp_hist_fraction_within(h, mean - sd, mean + sd);
    assert_true(fabs(f - 2 / sqrt(12)) < 0.01);
    free(h);
}

/* Exponential with mean 1 ms: p = -ln(1 - q) * mean. */
static void test_exponential_percentiles(void **state)
{
    sp_hist *h = new_hist();
    const int n = 2000000;
    for (int i = 0; i < n; i++)
        sp_hist_record(h, (uint64_t)(-log(1 - rng01()) * 1e6));
    const double ps[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double want = -log(1 - ps[i] / 100) * 1e6;
        double got = (double)sp_hist_percentile(h, ps[i]);
        /* Sampling noise at 2e6 samples is well under 2% at p99.9. */
        if (fabs(got - want) > want * 0.02)
            fail_msg("exponential p%g: %.0f ns, expected %.0f", ps[i], got, want);
    }
    assert_true(fabs(sp_hist_mean(h) - 1e6) < 1e6 * 0.01);
    assert_true(fabs(sp_hist_stdev(h) - 1e6) < 1e6 * 0.02);
    free(h);
}

/* Known exact ranks: 99 values of 1 ms and one of 1 s. */
static void test_rank_definition(void **state)
{
    sp_hist *h = new_hist();
    for (int i = 0; i < 99; i++)
        sp_hist_record(h, 1000000);
    sp_hist_record(h, 1000000000);
    uint64_t p99 = sp_hist_percentile(h, 99), p995 = sp_hist_percentile(h, 99.5);
    /* 99 of 100 are <= 1 ms: p99 is 1 ms; p99.5 needs the 100th value. */
    assert_true(fabs((double)p99 - 1e6) <= 1e6 * BOUND);
    assert_int_equal(p995, 1000000000);
    assert_int_equal(h->min_ns, 1000000);
    assert_int_equal(h->max_ns, 1000000000);
    free(h);
}

/* Merging per-thread histograms equals recording everything in one. */
static void test_merge(void **state)
{
    sp_hist *a = new_hist(), *b = new_hist(), *all = new_hist();
    for (int i = 0; i < 300000; i++) {
        uint64_t v = (uint64_t)(1e3 * pow(6e7, rng01()));
        sp_hist_record(i % 3 ? a : b, v);
        sp_hist_record(all, v);
    }
    sp_hist_merge(a, b);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->min_ns, all->min_ns);
    assert_int_equal(a->max_ns, all->max_ns);
    assert_int_equal(a->sum_ns, all->sum_ns);
    assert_memory_equal(a->counts, all->counts, sizeof a->counts);
    for (double p = 0; p <= 100; p += 0.5)
        assert_int_equal(sp_hist_percentile(a, p), sp_hist_percentile(all, p));
    /* Merging an empty one changes nothing, min included. */
    sp_hist_init(b);
    sp_hist_merge(a, b);
    assert_int_equal(a->min_ns, all->min_ns);
    free(a);
    free(b);
    free(all);
}

static void test_empty_and_overflow(void **state)
{
    sp_hist *h = new_hist();
    assert_int_equal(sp_hist_percentile(h, 50), 0);
    assert_true(sp_hist_mean(h) == 0 && sp_hist_stdev(h) == 0);
    sp_hist_record(h, SP_HIST_MAX_NS + 12345);
    assert_int_equal(h->overflow, 1);
    assert_int_equal(h->max_ns, SP_HIST_MAX_NS + 12345); /* max stays exact */
    assert_int_equal(sp_hist_index(UINT64_MAX), SP_HIST_NBUCKETS - 1);
    sp_hist_record(h, 0);
    assert_int_equal(sp_hist_percentile(h, 1), 0);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_bound_whole_range),
        cmocka_unit_test(test_single_values_report_within_bound),
        cmocka_unit_test(test_uniform_percentiles),
        cmocka_unit_test(test_exponential_percentiles),
        cmocka_unit_test(test_rank_definition),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_empty_and_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
