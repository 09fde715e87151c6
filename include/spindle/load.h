/* spindle/load.h: the load generator engine and its latency histogram.
 *
 * The engine behind `spindle load` and `spindle sweep`: HTTP/1.1 clients on
 * spindle's own coroutines (one coroutine per connection, one scheduler per
 * thread), closed loop or on a fixed schedule (open loop), keep-alive or a
 * connection per request.  It only ever talks to loopback addresses, and
 * every run stops by itself.  Nothing here prints: the CLI does.
 */
#ifndef SPINDLE_LOAD_H
#define SPINDLE_LOAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Latency histogram --------------------------------------------------
 * Log-linear, in nanoseconds, like HdrHistogram with 2 significant binary
 * digits and a bit: values below SP_HIST_LINEAR are counted exactly (one
 * counter per nanosecond); above, each power-of-two range [2^k, 2^(k+1)) is
 * cut into SP_HIST_SUB equal sub-buckets of width 2^k / SP_HIST_SUB.
 *
 * ERROR BOUND: a value v is reported as the midpoint of its sub-bucket, so
 * the reported value r satisfies |r - v| <= v / (2 * SP_HIST_SUB) = v / 256,
 * a relative error of at most 0.390625 %, for every v from 0 to
 * SP_HIST_MAX_NS (2^36 - 1 ns, about 68.7 s; the range asked for is 1 us to
 * 60 s).  Values below 256 ns are exact.  Larger values are clamped into the
 * top sub-bucket and counted in `overflow`; max_ns stays exact.
 *
 * 3,840 counters (30 KiB): a thread's histogram fits in L2 and merging two
 * is a loop of additions, so every thread records into its own and they
 * are merged at the end. */
#define SP_HIST_SUB_BITS 7
#define SP_HIST_SUB      (1u << SP_HIST_SUB_BITS)      /* 128 */
#define SP_HIST_LINEAR   (2u * SP_HIST_SUB)            /* 256: exact below */
#define SP_HIST_TOP_BIT  36                            /* 2^36 ns = 68.7 s */
#define SP_HIST_MAX_NS   ((UINT64_C(1) << SP_HIST_TOP_BIT) - 1)
#define SP_HIST_NBUCKETS \
    (SP_HIST_LINEAR + (SP_HIST_TOP_BIT - SP_HIST_SUB_BITS - 1) * SP_HIST_SUB)

typedef struct sp_hist {
    uint64_t count;
    uint64_t overflow;   /* values above SP_HIST_MAX_NS (clamped) */
    uint64_t min_ns;     /* exact; UINT64_MAX while empty */
    uint64_t max_ns;     /* exact; 0 while empty */
    uint64_t sum_ns;     /* exact, for the mean (saturates at UINT64_MAX) */
    uint64_t counts[SP_HIST_NBUCKETS];
} sp_hist;

/* Empties h. */
void sp_hist_init(sp_hist *h);
/* Counts one value (nanoseconds).  Never fails, never allocates. */
void sp_hist_record(sp_hist *h, uint64_t ns);
/* Adds every count of from to into (min, max, sum and overflow too). */
void sp_hist_merge(sp_hist *into, const sp_hist *from);
/* The value at percentile p (0..100): the smallest recorded value v such
 * that at least p % of the values are <= v, reported within the error bound
 * above and never outside [min_ns, max_ns].  p >= 100 gives max_ns exactly,
 * p <= 0 min_ns;
 * an empty histogram gives 0. */
uint64_t sp_hist_percentile(const sp_hist *h, double p);
/* Mean (exact unless the sum saturated) and standard deviation (from the
 * sub-bucket midpoints, within the error bound), in ns; 0 when empty. */
double sp_hist_mean(const sp_hist *h);
double sp_hist_stdev(const sp_hist *h);
/* Fraction (0..1) of the values within [lo_ns, hi_ns], by sub-bucket
 * midpoint: wrk's "+/- Stdev" column. */
double sp_hist_fraction_within(const sp_hist *h, double lo_ns, double hi_ns);
/* Bucket arithmetic, exposed for tests: the counter a value lands in, and
 * the range [lo, hi] of values that land in bucket i. */
unsigned sp_hist_index(uint64_t ns);
void sp_hist_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi);

/* ---- Target --------------------------------------------------------------- */

/* A parsed http:// URL on loopback. */
typedef struct sp_load_target {
    int family;           /* AF_INET or AF_INET6 */
    unsigned char addr[16];/* network order: 4 bytes (IPv4) or 16 (IPv6) */
    int port;
    char host[64];        /* the Host header: as written in the URL */
    char path[1024];      /* path and query; "/" when the URL has none */
} sp_load_target;

/* Parses "http://HOST[:PORT][/PATH]" where HOST is a numeric address in
 * 127.0.0.0/8, [::1], or "localhost" (taken as 127.0.0.1, never looked up).
 * Returns 0, or -EINVAL with a sentence saying what is wrong in err (any
 * other host is refused: this tool never loads another machine). */
int sp_load_target_parse(const char *url, sp_load_target *t, char *err, size_t errlen);

/* Parses a duration: a decimal number with a unit, ns, us, ms, s, m or h;
 * a bare number is seconds ("10s", "500ms", "1.5m", "30").  Returns 0, or
 * -EINVAL for anything else (empty, negative, junk after the unit, over a
 * day: a load run is bounded). */
int sp_load_parse_duration(const char *s, int64_t *ns);

/* ---- Engine --------------------------------------------------------------- */

enum {
    SP_LOAD_ERR_CONNECT = 0, /* socket, bind or connect failed (refused, no
                              * ports, no descriptors); a connect still
                              * pending at the timeout is a timeout */
    SP_LOAD_ERR_READ,        /* read failed, the peer closed early, or the
                              * response was malformed */
    SP_LOAD_ERR_WRITE,       /* the request could not be written */
    SP_LOAD_ERR_TIMEOUT,     /* no whole response within the timeout */
    SP_LOAD_ERR_STATUS,      /* a whole response whose status was not 2xx */
    SP_LOAD_ERR_N
};
/* "connect", "read", "write", "timeout", "status". */
const char *sp_load_err_name(int kind);

typedef struct sp_load_opts {
    const char *url;
    int conns;                 /* connections (closed loop: requests in flight) */
    int threads;               /* threads, each with its own scheduler; 0: 1 */
    int64_t duration_ns;       /* measured time; 0: until `requests` are done */
    uint64_t requests;         /* request count (-n); 0: until duration_ns */
    int64_t limit_ns;          /* with `requests`: stop at this time anyway
                                * (0: SP_LOAD_LIMIT_DEFAULT_NS) */
    int64_t warmup_ns;         /* run this long first, not counted */
    double rate;               /* open loop: requests/s on a fixed schedule;
                                * 0: closed loop */
    int keepalive;             /* 0: a connection per request, Connection: close */
    /* 1: close every connection with a reset (SO_LINGER 0) instead of a
     * FIN.  Less TCP work on both ends (no FIN exchange, no TIME_WAIT on
     * the server), but the server sees each connection aborted, not
     * closed: not what ab or wrk do, so not a figure to set beside
     * theirs.  0 (the default): a normal close. */
    int close_rst;
    int64_t timeout_ns;        /* per request; 0: SP_LOAD_TIMEOUT_DEFAULT_NS */
    const char *method;        /* NULL: GET */
    const char *const *headers;/* "Name: value" lines, without CRLF */
    int nheaders;
    /* Source addresses to spread connections over from the start (IPv4
     * loopback targets only): 127.0.0.1 .. 127.0.0.src_addrs.  0: one, and
     * more when the ports of the ones in use run out. */
    int src_addrs;
    /* Called about once a second from the first engine thread with the
     * seconds run so far (warm-up included); may be NULL.  Must not block. */
    void (*progress)(void *arg, double elapsed_s);
    void *progress_arg;
} sp_load_opts;

/* 10 s, as wrk's default timeout is a couple of seconds and ab's is 30: long
 * enough that a loaded loopback server is slow, not failed. */
#define SP_LOAD_TIMEOUT_DEFAULT_NS (10 * INT64_C(1000000000))
/* A -n run stops after 10 minutes at the latest: every run is bounded. */
#define SP_LOAD_LIMIT_DEFAULT_NS   (600 * INT64_C(1000000000))
/* Engine threads at most (the caller's and SP_LOAD_THREADS_MAX - 1 more). */
#define SP_LOAD_THREADS_MAX 256
/* Connection-per-request and source addresses beyond 127.0.0.1. */
#define SP_LOAD_SRC_MAX 254

typedef struct sp_load_result {
    sp_hist hist;              /* latency of each completed response */
    uint64_t requests;         /* completed responses, any status */
    uint64_t bytes;            /* bytes read (heads and bodies) */
    uint64_t status[6];        /* completed responses by class: [1]=1xx..[5]=5xx,
                                * [0] other */
    uint64_t errors[SP_LOAD_ERR_N];
    int first_errno[SP_LOAD_ERR_N]; /* errno of the first error of a kind
                                     * (EPROTO: malformed response, EPIPE:
                                     * closed before the response ended) */
    uint64_t unfinished;       /* in flight when the duration ran out (even
                                * if begun in the warm-up): neither requests
                                * nor errors (as wrk does) */
    double elapsed_s;          /* measured seconds (after the warm-up) */
    int threads;
    int conns;                 /* connections that ran: fewer than asked only
                                * when a coroutine could not be made */
    int conns_errno;           /* why not, then (ENOMEM) */
    int src_addrs;             /* source addresses used: 1 = the kernel's choice */
    int src_exhausted;         /* ports ran out even with SP_LOAD_SRC_MAX addresses
                                * (or on ::1, which has only one) */
    int limit_hit;             /* a -n run stopped at its time limit */
    uint64_t attempted;        /* requests started (a -n run: == requests asked,
                                * unless limit_hit) */
} sp_load_result;

/* Total of r->errors. */
uint64_t sp_load_errors(const sp_load_result *r);

/* Runs the load opts describes and fills r.  Raises the soft RLIMIT_NOFILE
 * to the hard limit.  Runs the first engine thread on the calling thread
 * (which must not be inside a coroutine) and opts->threads - 1 others.
 * The other threads come from a pool kept for the process's lifetime and
 * reused by later runs; runs from several threads at once take turns.
 * Returns 0 (errors of requests are counted in r, not returned), or a
 * negative errno with a sentence in err: -EINVAL (bad options or URL),
 * -EMFILE (more connections than descriptors), -ENOMEM, or what starting a
 * thread failed with.  Parks nothing of the caller's. */
int sp_load_run(const sp_load_opts *opts, sp_load_result *r, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
