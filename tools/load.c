/* `spindle load URL [options]`: the load generator's command line.
 *
 * Thin: parses the options into an sp_load_opts, runs the engine
 * (src/load), prints the result the way wrk does, or as one JSON object
 * (shared/BENCH.md).  Exit status: 0 when the run happened (errors of
 * requests are in the report, never hidden), 2 for a refused option, 1 when
 * the run could not happen (more connections than descriptors, ...). */
#define _GNU_SOURCE
#include <spindle.h>
#include <spindle/load.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* As wrk: ten connections for ten seconds when nothing is said. */
#define LOAD_DEFAULT_CONNS 10
#define LOAD_DEFAULT_DURATION_NS (10 * INT64_C(1000000000))
/* More would not fit the descriptor limit of any machine we run on; the
 * check only stops a typo from allocating gigabytes of buffers. */
#define LOAD_MAX_CONNS 1000000
#define LOAD_MAX_THREADS SP_LOAD_THREADS_MAX
#define LOAD_MAX_HEADERS 64

static const char usage_text[] =
    "usage: spindle load URL [options]\n"
    "\n"
    "HTTP/1.1 load on spindle coroutines.  URL: http://HOST[:PORT][/PATH], HOST on\n"
    "loopback only (127.0.0.0/8, [::1], localhost).\n"
    "\n"
    "  -c, --connections N  connections, each with one request in flight (default 10)\n"
    "  -d, --duration T     how long to run: 10s, 500ms, 2m (default 10s; with -n,\n"
    "                       a cap on the run, else 600s)\n"
    "  -n, --requests N     stop after exactly N requests (responses and errors)\n"
    "  -t, --threads N      engine threads, each its own scheduler (default 1)\n"
    "  -R, --rate R         open loop: R requests/s on a fixed schedule, latency from\n"
    "                       when each request was due (coordinated omission corrected)\n"
    "  -k, --keepalive      reuse connections (the default)\n"
    "      --no-keepalive   a connection per request, Connection: close (as ab without -k)\n"
    "      --close-rst      close connections with a reset (SO_LINGER 0), not a FIN:\n"
    "                       less TCP work, but the server sees aborts; not comparable\n"
    "                       with ab or wrk, which close normally (default: off)\n"
    "  -H, --header 'N: v'  an extra request header (repeatable)\n"
    "  -m, --method M       the request method (default GET)\n"
    "      --timeout T      a request without a whole response by then is an error\n"
    "                       (default 10s)\n"
    "      --warmup T       run this long first, uncounted (default 0)\n"
    "      --src-addrs N    spread connections over source addresses 127.0.0.1 to\n"
    "                       127.0.0.N from the start (default: one, more only when its\n"
    "                       ports run out; IPv4 loopback targets)\n"
    "      --json           one JSON object instead of the table\n"
    "  -h, --help           this text\n";

static int refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("spindle load: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(spindle load --help for the options)\n", stderr);
    return 2;
}

/* A whole decimal number in [lo, hi], nothing after it. */
static int parse_count(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !*s || *s == ' ')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* 1k, 10k, 1M: counts in load tests are round numbers. */
    if (*end == 'k' && end[1] == 0 && v <= LLONG_MAX / 1000)
        v *= 1000, end++;
    else if (*end == 'M' && end[1] == 0 && v <= LLONG_MAX / 1000000)
        v *= 1000000, end++;
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

typedef struct load_cli {
    sp_load_opts o;
    const char *headers[LOAD_MAX_HEADERS];
    int json;
    int duration_given;
} load_cli;

/* Matches argv[*i] against a short and a long name; sets *val to the
 * option's value ("--name=value", "--name value", "-xvalue", "-x value").
 * Returns 1 on a match, 0 if not this option, -1 if the value is missing
 * (after printing why). */
static int opt_val(int argc, char **argv, int *i, const char *shortname, const char *longname,
                   const char **val)
{
    const char *a = argv[*i];
    size_t ln = strlen(longname);
    if (strncmp(a, longname, ln) == 0 && (a[ln] == 0 || a[ln] == '=')) {
        if (a[ln] == '=') {
            *val = a + ln + 1;
            return 1;
        }
    } else if (shortname && strncmp(a, shortname, 2) == 0) {
        if (a[2]) {
            *val = a + 2;
            return 1;
        }
    } else {
        return 0;
    }
    if (*i + 1 >= argc) {
        refuse("%s needs a value", a);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

static int parse_args(int argc, char **argv, load_cli *cli)
{
    sp_load_opts *o = &cli->o;
    memset(cli, 0, sizeof *cli);
    o->conns = LOAD_DEFAULT_CONNS;
    o->threads = 1;
    o->keepalive = 1;
    o->headers = cli->headers;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long n;
        int m;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 1;
        } else if (!strcmp(a, "--json")) {
            cli->json = 1;
        } else if (!strcmp(a, "-k") || !strcmp(a, "--keepalive")) {
            o->keepalive = 1;
        } else if (!strcmp(a, "--no-keepalive")) {
            o->keepalive = 0;
        } else if (!strcmp(a, "--close-rst")) {
            o->close_rst = 1;
        } else if ((m = opt_val(argc, argv, &i, "-c", "--connections", &v))) {
            if (m < 0)
                return 2;
            if (parse_count(v, 1, LOAD_MAX_CONNS, &n) < 0)
                return refuse("-c wants a number of connections from 1 to %d, not '%s'",
                              LOAD_MAX_CONNS, v);
            o->conns = (int)n;
        } else if ((m = opt_val(argc, argv, &i, "-t", "--threads", &v))) {
            if (m < 0)
                return 2;
            if (parse_count(v, 1, LOAD_MAX_THREADS, &n) < 0)
                return refuse("--threads wants a number from 1 to %d, not '%s'",
                              LOAD_MAX_THREADS, v);
            o->threads = (int)n;
        } else if ((m = opt_val(argc, argv, &i, "-n", "--requests", &v))) {
            if (m < 0)
                return 2;
            if (parse_count(v, 1, LLONG_MAX, &n) < 0)
                return refuse("-n wants a request count of at least 1, not '%s'", v);
            o->requests = (uint64_t)n;
        } else if ((m = opt_val(argc, argv, &i, "-d", "--duration", &v))) {
            if (m < 0)
                return 2;
            if (sp_load_parse_duration(v, &o->duration_ns) < 0 || o->duration_ns <= 0)
                return refuse("-d wants a duration such as 10s, 500ms or 2m, not '%s'", v);
            cli->duration_given = 1;
        } else if ((m = opt_val(argc, argv, &i, NULL, "--timeout", &v))) {
            if (m < 0)
                return 2;
            if (sp_load_parse_duration(v, &o->timeout_ns) < 0 || o->timeout_ns <= 0)
                return refuse("--timeout wants a duration such as 2s or 500ms, not '%s'", v);
        } else if ((m = opt_val(argc, argv, &i, NULL, "--warmup", &v))) {
            if (m < 0)
                return 2;
            if (sp_load_parse_duration(v, &o->warmup_ns) < 0)
                return refuse("--warmup wants a duration such as 1s, not '%s'", v);
        } else if ((m = opt_val(argc, argv, &i, NULL, "--src-addrs", &v))) {
            if (m < 0)
                return 2;
            if (parse_count(v, 1, SP_LOAD_SRC_MAX, &n) < 0)
                return refuse("--src-addrs wants a number from 1 to %d, not '%s'",
                              SP_LOAD_SRC_MAX, v);
            o->src_addrs = (int)n;
        } else if ((m = opt_val(argc, argv, &i, "-R", "--rate", &v))) {
            if (m < 0)
                return 2;
            char *end;
            double r = strtod(v, &end);
            if (end == v || *end || !(r >= 0.001) || isinf(r))
                return refuse("--rate wants requests per second (a positive number), "
                              "not '%s'", v);
            o->rate = r;
        } else if ((m = opt_val(argc, argv, &i, "-H", "--header", &v))) {
            if (m < 0)
                return 2;
            if (o->nheaders == LOAD_MAX_HEADERS)
                return refuse("at most %d -H headers", LOAD_MAX_HEADERS);
            const char *colon = strchr(v, ':');
            if (!colon || colon == v || strpbrk(v, "\r\n") ||
                memchr(v, ' ', (size_t)(colon - v)))
                return refuse("-H wants 'Name: value', not '%s'", v);
            cli->headers[o->nheaders++] = v;
        } else if ((m = opt_val(argc, argv, &i, "-m", "--method", &v))) {
            if (m < 0)
                return 2;
            if (!*v || strpbrk(v, " \t\r\n:/"))
                return refuse("--method wants a method name such as GET or HEAD, not '%s'", v);
            o->method = v;
        } else if (a[0] == '-' && a[1]) {
            return refuse("unknown option '%s'", a);
        } else if (o->url) {
            return refuse("one URL only ('%s' and '%s')", o->url, a);
        } else {
            o->url = a;
        }
    }
    if (!o->url)
        return refuse("no URL: spindle load http://127.0.0.1:PORT/PATH [options]");
    if (o->threads > o->conns)
        return refuse("%d threads for %d connections: each thread needs one", o->threads,
                      o->conns);
    if (o->requests) {
        o->limit_ns = cli->duration_given ? o->duration_ns : 0;
        o->duration_ns = 0;
    } else if (!cli->duration_given) {
        o->duration_ns = LOAD_DEFAULT_DURATION_NS;
    }
    char err[256];
    sp_load_target t;
    if (sp_load_target_parse(o->url, &t, err, sizeof err) < 0)
        return refuse("%s", err);
    return 0;
}

/* ---- printing ------------------------------------------------------------------ */

/* A time as wrk prints it: 631.66us, 1.23ms, 2.00s. */
static const char *fmt_time(char *buf, size_t n, double ns)
{
    if (ns < 1e6)
        snprintf(buf, n, "%.2fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, n, "%.2fms", ns / 1e6);
    else
        snprintf(buf, n, "%.2fs", ns / 1e9);
    return buf;
}

static const char *fmt_bytes(char *buf, size_t n, double b)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1024 && u < 4)
        b /= 1024, u++;
    snprintf(buf, n, "%.2f%s", b, units[u]);
    return buf;
}

static const double pcts[] = {50, 90, 99, 99.9, 99.99};

static void print_errors(const sp_load_result *r)
{
    printf("  Errors: %" PRIu64 " (connect %" PRIu64 ", read %" PRIu64 ", write %" PRIu64
           ", timeout %" PRIu64 ", status %" PRIu64 ")\n",
           sp_load_errors(r), r->errors[SP_LOAD_ERR_CONNECT], r->errors[SP_LOAD_ERR_READ],
           r->errors[SP_LOAD_ERR_WRITE], r->errors[SP_LOAD_ERR_TIMEOUT],
           r->errors[SP_LOAD_ERR_STATUS]);
    for (int k = 0; k < SP_LOAD_ERR_N; k++) {
        if (!r->errors[k] || k == SP_LOAD_ERR_STATUS)
            continue;
        int e = r->first_errno[k];
        const char *why = e == EPROTO ? "malformed response"
                          : e == EPIPE ? "closed before the response ended"
                                       : strerror(e);
        printf("    %s: first was %s\n", sp_load_err_name(k), why);
    }
    if (r->errors[SP_LOAD_ERR_STATUS])
        printf("  Non-2xx responses: %" PRIu64 " (1xx %" PRIu64 ", 3xx %" PRIu64
               ", 4xx %" PRIu64 ", 5xx %" PRIu64 ", other %" PRIu64 ")\n",
               r->errors[SP_LOAD_ERR_STATUS], r->status[1], r->status[3], r->status[4],
               r->status[5], r->status[0]);
}

static void print_human(const load_cli *cli, const sp_load_result *r)
{
    const sp_load_opts *o = &cli->o;
    char a[32], b[32], c[32];
    if (o->requests)
        printf("Running %" PRIu64 " requests @ %s\n", o->requests, o->url);
    else
        printf("Running %s test @ %s\n", fmt_time(a, sizeof a, (double)o->duration_ns),
               o->url);
    printf("  %d thread%s and %d connections, %s", r->threads, r->threads == 1 ? "" : "s",
           r->conns, o->keepalive ? "keep-alive" : "a connection per request");
    if (o->close_rst)
        printf(", closed with a reset");
    if (o->rate > 0)
        printf(", open loop at %.1f requests/s", o->rate);
    if (o->warmup_ns)
        printf(", after %s of warm-up", fmt_time(a, sizeof a, (double)o->warmup_ns));
    printf("\n");
    const sp_hist *h = &r->hist;
    double mean = sp_hist_mean(h), sd = sp_hist_stdev(h);
    printf("  Latency   %10s %10s %10s %10s\n", "Avg", "Stdev", "Max", "+/- Stdev");
    printf("            %10s %10s %10s %9.2f%%\n", fmt_time(a, sizeof a, mean),
           fmt_time(b, sizeof b, sd), fmt_time(c, sizeof c, (double)(h->count ? h->max_ns : 0)),
           100.0 * sp_hist_fraction_within(h, mean - sd, mean + sd));
    printf("  Latency Distribution%s\n", o->rate > 0 ? " (from when each request was due)" : "");
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
        printf("  %7g%%  %10s\n", pcts[i],
               fmt_time(a, sizeof a, (double)sp_hist_percentile(h, pcts[i])));
    printf("  %7s   %10s\n", "max", fmt_time(a, sizeof a, (double)(h->count ? h->max_ns : 0)));
    printf("  %" PRIu64 " requests in %.2fs, %s read\n", r->requests, r->elapsed_s,
           fmt_bytes(a, sizeof a, (double)r->bytes));
    print_errors(r);
    if (r->unfinished)
        printf("  In flight when time ran out (not counted): %" PRIu64 "\n", r->unfinished);
    printf("Requests/sec: %10.2f\n", (double)r->requests / r->elapsed_s);
    printf("Transfer/sec: %10s\n", fmt_bytes(a, sizeof a, (double)r->bytes / r->elapsed_s));
}

static double us(uint64_t ns) { return (double)ns / 1e3; }

static void print_json(const load_cli *cli, const sp_load_result *r)
{
    const sp_load_opts *o = &cli->o;
    const sp_hist *h = &r->hist;
    printf("{\"url\":");
    spindle_json_string(stdout, o->url);
    printf(",\"conc\":%d,\"threads\":%d,\"requests\":%" PRIu64 ",\"duration_s\":%.3f"
           ",\"rps\":%.1f",
           r->conns, r->threads, r->requests, r->elapsed_s,
           (double)r->requests / r->elapsed_s);
    printf(",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f"
           ",\"p9999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"stdev_us\":%.1f",
           us(sp_hist_percentile(h, 50)), us(sp_hist_percentile(h, 90)),
           us(sp_hist_percentile(h, 99)), us(sp_hist_percentile(h, 99.9)),
           us(sp_hist_percentile(h, 99.99)), us(h->count ? h->max_ns : 0),
           sp_hist_mean(h) / 1e3, sp_hist_stdev(h) / 1e3);
    printf(",\"errors\":%" PRIu64, sp_load_errors(r));
    for (int k = 0; k < SP_LOAD_ERR_N; k++)
        printf(",\"errors_%s\":%" PRIu64, sp_load_err_name(k), r->errors[k]);
    printf(",\"unfinished\":%" PRIu64 ",\"keepalive\":%s,\"bytes\":%" PRIu64
           ",\"transfer_Bps\":%.1f",
           r->unfinished, o->keepalive ? "true" : "false", r->bytes,
           (double)r->bytes / r->elapsed_s);
    if (o->rate > 0)
        printf(",\"rate\":%.3f", o->rate);
    printf(",\"close_rst\":%s", o->close_rst ? "true" : "false");
    printf(",\"src_addrs\":%d}\n", r->src_addrs);
}

/* What the run could not do as asked, on stderr so a --json reader still
 * sees it. */
static void print_notes(const load_cli *cli, const sp_load_result *r)
{
    const sp_load_opts *o = &cli->o;
    if (r->src_addrs > 1 && r->src_addrs > o->src_addrs)
        fprintf(stderr,
                "spindle load: note: the ports of one source address %s, so connections "
                "were spread over source addresses 127.0.0.1 to 127.0.0.%d\n",
                o->keepalive ? "would not hold them all" : "ran out (TIME_WAIT)",
                r->src_addrs);
    else if (r->src_addrs > 1)
        fprintf(stderr, "spindle load: note: connections spread over source addresses "
                        "127.0.0.1 to 127.0.0.%d\n", r->src_addrs);
    if (r->src_exhausted)
        fprintf(stderr,
                "spindle load: warning: could not open every connection asked for: the local "
                "ports ran out even %s (connect errors: EADDRNOTAVAIL)\n",
                r->src_addrs > 1 ? "across every source address" : "(on [::1] there is only one "
                                                                    "source address)");
    if (r->conns < o->conns)
        fprintf(stderr, "spindle load: warning: only %d of %d connections ran: %s\n", r->conns,
                o->conns, strerror(r->conns_errno ? r->conns_errno : ENOMEM));
    if (r->limit_hit)
        fprintf(stderr,
                "spindle load: warning: stopped at the time limit after %" PRIu64 " of %" PRIu64
                " requests\n",
                r->attempted, o->requests);
}

int spindle_load(int argc, char **argv)
{
    load_cli cli;
    int rc = parse_args(argc, argv, &cli);
    if (rc)
        return rc == 1 ? 0 : rc;
    signal(SIGPIPE, SIG_IGN);
    sp_load_result *r = malloc(sizeof *r);
    if (!r) {
        fprintf(stderr, "spindle load: out of memory\n");
        return 1;
    }
    char err[512];
    rc = sp_load_run(&cli.o, r, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "spindle load: %s\n", err[0] ? err : strerror(-rc));
        free(r);
        return rc == -EINVAL ? 2 : 1;
    }
    if (cli.json)
        print_json(&cli, r);
    else
        print_human(&cli, r);
    fflush(stdout);
    print_notes(&cli, r);
    free(r);
    return 0;
}
