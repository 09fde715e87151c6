/* The latency histogram (spindle/load.h): log-linear counters in ns.
 *
 * The index of a value is shift * SUB + (v >> shift), where shift is how far
 * v must be shifted right to leave SUB_BITS + 1 significant bits (0 for
 * values below SP_HIST_LINEAR).  That one formula covers both the exact
 * linear start and every power-of-two range, so recording is a count of
 * leading zeros, a shift and an add. */
#include <spindle/load.h>

#include <math.h>
#include <string.h>

void sp_hist_init(sp_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min_ns = UINT64_MAX;
}

unsigned sp_hist_index(uint64_t v)
{
    if (v > SP_HIST_MAX_NS)
        v = SP_HIST_MAX_NS;
    if (v < SP_HIST_LINEAR)
        return (unsigned)v;
    /* The highest set bit is k >= 8; keep SUB_BITS bits below it. */
    unsigned k = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = k - SP_HIST_SUB_BITS;
    return shift * SP_HIST_SUB + (unsigned)(v >> shift);
}

void sp_hist_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
    if (i < SP_HIST_LINEAR) {
        *lo = *hi = i;
        return;
    }
    unsigned shift = i / SP_HIST_SUB - 1;
    uint64_t m = i - shift * SP_HIST_SUB; /* in [SUB, 2 * SUB) */
    *lo = m << shift;
    *hi = ((m + 1) << shift) - 1;
}

static double bucket_mid(unsigned i)
{
    uint64_t lo, hi;
    sp_hist_bucket_range(i, &lo, &hi);
    return ((double)lo + (double)hi) / 2.0;
}

void sp_hist_record(sp_hist *h, uint64_t ns)
{
    if (ns > SP_HIST_MAX_NS)
        h->overflow++;
    h->counts[sp_hist_index(ns)]++;
    h->count++;
    if (ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
    h->sum_ns = h->sum_ns + ns < h->sum_ns ? UINT64_MAX : h->sum_ns + ns;
}

void sp_hist_merge(sp_hist *into, const sp_hist *from)
{
    for (unsigned i = 0; i < SP_HIST_NBUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->count += from->count;
    into->overflow += from->overflow;
    if (from->min_ns < into->min_ns)
        into->min_ns = from->min_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
    uint64_t s = into->sum_ns + from->sum_ns;
    into->sum_ns = s < into->sum_ns ? UINT64_MAX : s;
}

uint64_t sp_hist_percentile(const sp_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p >= 100.0)
        return h->max_ns;
    if (p <= 0)
        return h->min_ns;
    /* The rank of the wanted value, 1-based: ceil(p% of count), at least 1. */
    double want = ceil(p / 100.0 * (double)h->count);
    uint64_t rank = want < 1 ? 1 : (uint64_t)want;
    uint64_t seen = 0;
    for (unsigned i = 0; i < SP_HIST_NBUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            /* The midpoint is within the bound; min and max are exact and
             * tighter at the ends (a single value reports as itself). */
            double v = bucket_mid(i);
            if (v < (double)h->min_ns)
                return h->min_ns;
            if (v > (double)h->max_ns)
                return h->max_ns;
            return (uint64_t)(v + 0.5);
        }
    }
    return h->max_ns;
}

double sp_hist_mean(const sp_hist *h)
{
    return h->count ? (double)h->sum_ns / (double)h->count : 0.0;
}

double sp_hist_stdev(const sp_hist *h)
{
    if (h->count < 2)
        return 0.0;
    double mean = sp_hist_mean(h), acc = 0;
    for (unsigned i = 0; i < SP_HIST_NBUCKETS; i++) {
        if (h->counts[i]) {
            double d = bucket_mid(i) - mean;
            acc += d * d * (double)h->counts[i];
        }
    }
    return sqrt(acc / (double)h->count);
}

double sp_hist_fraction_within(const sp_hist *h, double lo_ns, double hi_ns)
{
    if (h->count == 0)
        return 0.0;
    uint64_t in = 0;
    for (unsigned i = 0; i < SP_HIST_NBUCKETS; i++) {
        if (h->counts[i]) {
            double m = bucket_mid(i);
            if (m >= lo_ns && m <= hi_ns)
                in += h->counts[i];
        }
    }
    return (double)in / (double)h->count;
}
