/* Differential test against Debian's http-parser (nodejs/http-parser 2.9)
 * on the shared corpus.  Where the two disagree, our result is asserted
 * (by corpus_check) and the case must be listed below with the RFC 9112
 * rule that decides it; a listed case on which they agree fails too, so the
 * list never goes stale and no difference is ignored silently. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "http_corpus.h"

struct known_difference {
    const char *name;
    const char *why;
};

/* Every entry: what http-parser 2.9 does, and the rule we follow instead. */
static const struct known_difference known[] = {
    /* -- it accepts what RFC 9112 says MUST be refused -- */
    { "space_before_colon", "RFC 9112 §5.1: whitespace before ':' MUST be 400" },
    { "space_before_colon_te", "RFC 9112 §5.1; it honours 'Transfer-Encoding :' (smuggling)" },
    { "space_before_first_field", "RFC 9112 §2.2: MUST refuse or skip a WS-led first line" },
    { "host_missing", "RFC 9112 §3.2: MUST 400 an HTTP/1.1 request without Host" },
    { "host_twice", "RFC 9112 §3.2: MUST 400 more than one Host" },
    { "host_twice_different", "RFC 9112 §3.2" },
    { "te_chunked_two_lines", "RFC 9112 §7: chunked MUST NOT be applied twice" },
    { "te_http10", "RFC 9112 §6.1: TE in an HTTP/1.0 message is faulty framing" },
    { "absolute_empty_authority", "RFC 9110 §4.2.1: an empty host MUST be rejected" },
    { "target_star_not_options", "RFC 9112 §3.2.4: '*' is for OPTIONS only" },
    { "chunk_trailer_space_before_colon", "RFC 9112 §7.1.2 + §5.1" },
    /* -- it accepts what RFC 9112 lets a server refuse, and we do -- */
    { "bare_lf_request_line", "RFC 9112 §2.2: a bare LF MAY be accepted; we refuse it" },
    { "bare_lf_field", "RFC 9112 §2.2 (our choice: CRLF only)" },
    { "bare_lf_end", "RFC 9112 §2.2 (our choice: CRLF only)" },
    { "bare_lf_leading", "RFC 9112 §2.2 (our choice: CRLF only)" },
    { "te_hidden_by_bare_lf", "RFC 9112 §2.2: a bare LF that hides a TE from a proxy" },
    { "chunk_last_bare_lf", "RFC 9112 §7.1 + §2.2 (our choice: CRLF only)" },
    { "chunk_ext_bare_lf", "RFC 9112 §7.1.1 + §2.2 (it waits, we refuse)" },
    { "obs_fold", "RFC 9112 §5.2: a server MAY refuse obs-fold with 400; we do" },
    { "obs_fold_tab", "RFC 9112 §5.2" },
    { "chunk_trailer_obs_fold", "RFC 9112 §7.1.2 + §5.2" },
    { "double_space", "RFC 9112 §3: single SP; splitting on whitespace is only a MAY" },
    { "no_version", "RFC 9112 §3: HTTP/0.9 requests are not supported" },
    { "target_fragment", "RFC 9112 §3.2: no fragment in a request-target" },
    { "target_non_ascii", "RFC 9112 §3.2 / RFC 3986 §2: non-ASCII must be encoded" },
    { "absolute_userinfo", "RFC 9110 §4.2.4: userinfo SHOULD be treated as an error" },
    { "absolute_other_scheme", "RFC 9112 §3.2.2: we serve http/https targets only" },
    { "chunk_size_bws_no_ext", "RFC 9112 §7.1.1: BWS only before ';'" },
    { "chunk_ext_ctl", "RFC 9112 §7.1.1: extensions are tokens or quoted-strings" },
    { "te_gzip_chunked", "RFC 9112 §6.1: SHOULD 501 a coding not implemented" },
    { "method_connect", "RFC 9110 §9.3.6: CONNECT is for proxies; 501 from an origin" },
    { "method_propfind", "RFC 9110 §9.1: SHOULD 501 a method not implemented" },
    { "version_2_0", "RFC 9110 §15.6.6: 505 for a major version we do not speak" },
    { "version_0_9", "RFC 9110 §15.6.6" },
    { "version_3_0", "RFC 9110 §15.6.6" },
    /* -- limits: http-parser has an 80 KiB head limit and no body limit -- */
    { "gen_line_8193", "RFC 9112 §3: SHOULD 414 a request-target over our limit" },
    { "gen_headers_8193", "RFC 6585 §5: 431 over our header-section limit" },
    { "gen_headers_101", "RFC 6585 §5: 431 over our field-count limit" },
    { "gen_crlf_flood", "RFC 9112 §2.2: empty lines count against the request line" },
    { "gen_chunk_zeros", "RFC 9112 §7.1: we bound the chunk-size line (4 KiB)" },
    { "length_over_limit", "RFC 9110 §15.5.14: 413 over max_body" },
    { "length_over_default_limit", "RFC 9110 §15.5.14" },
    { "chunked_over_limit", "RFC 9110 §15.5.14" },
    { "cl_int64_max", "RFC 9110 §15.5.14 (it waits for the body)" },
    { "cl_int64_max_plus_one", "RFC 9110 §8.6: we bound lengths by INT64_MAX (off_t)" },
    /* -- both accept, with different results -- */
    { "http10_keepalive_and_close", "RFC 9112 §9.6: 'close' in the list wins; it keeps alive" },
    { "te_case_and_ows", "RFC 9112 §7: codings are case-insensitive, OWS is trimmed; it refuses" },
    { "te_empty_elements", "RFC 9110 §5.6.1: empty list elements MUST be ignored; it refuses" },
    { "value_ows_trimmed", "RFC 9110 §5.5: trailing OWS is not part of the value; it keeps it" },
    { "version_1_9_as_1_1", "RFC 9110 §2.5: a higher minor version is handled as 1.1" },
    { "chunked_trailers", "RFC 9110 §6.5.1: we drop trailers; it reports them as headers" },
    { NULL, NULL },
};

/* ---- what http-parser makes of a message ---- */

enum verdict { ACCEPT, REJECT, INCOMPLETE };

struct hp_result {
    enum verdict verdict;
    const char *err;
    char url[16384];
    size_t url_len;
    char names[CORPUS_MAX_HEADERS][128];
    char values[CORPUS_MAX_HEADERS][16384 / 8];
    size_t name_len[CORPUS_MAX_HEADERS], value_len[CORPUS_MAX_HEADERS];
    int nheaders;
    bool in_value;
    char body[CORPUS_BODY_MAX];
    size_t body_len;
    int keep_alive;
    bool complete;
    unsigned method, major, minor;
    size_t consumed;
};

static void append(char *dst, size_t *len, size_t cap, const char *p, size_t n)
{
    if (*len + n > cap)
        n = cap - *len; /* longer than the test keeps: compared truncated */
    memcpy(dst + *len, p, n);
    *len += n;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct hp_result *r = p->data;

    append(r->url, &r->url_len, sizeof r->url, at, n);
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    struct hp_result *r = p->data;

    if (r->in_value || r->nheaders == 0) {
        if (r->nheaders == CORPUS_MAX_HEADERS)
            return 1;
        r->nheaders++;
        r->name_len[r->nheaders - 1] = r->value_len[r->nheaders - 1] = 0;
        r->in_value = false;
    }
    append(r->names[r->nheaders - 1], &r->name_len[r->nheaders - 1],
           sizeof r->names[0], at, n);
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct hp_result *r = p->data;

    r->in_value = true;
    append(r->values[r->nheaders - 1], &r->value_len[r->nheaders - 1],
           sizeof r->values[0], at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct hp_result *r = p->data;

    r->keep_alive = http_should_keep_alive(p);
    r->method = p->method;
    r->major = p->http_major;
    r->minor = p->http_minor;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct hp_result *r = p->data;

    append(r->body, &r->body_len, sizeof r->body, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct hp_result *r = p->data;

    r->complete = true;
    http_parser_pause(p, 1); /* the first message only, as ours */
    return 0;
}

static void hp_parse(const char *buf, size_t len, struct hp_result *r)
{
    http_parser_settings s;
    http_parser p;
    enum http_errno e;

    memset(&s, 0, sizeof s);
    s.on_url = on_url;
    s.on_header_field = on_field;
    s.on_header_value = on_value;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    memset(r, 0, sizeof *r);
    http_parser_init(&p, HTTP_REQUEST);
    p.data = r;
    r->consumed = http_parser_execute(&p, &s, buf, len);
    e = HTTP_PARSER_ERRNO(&p);
    r->err = http_errno_name(e);
    if (e != HPE_OK && e != HPE_PAUSED)
        r->verdict = REJECT;
    else
        r->verdict = r->complete ? ACCEPT : INCOMPLETE;
}

/* ---- the comparison ---- */

static enum verdict ours_verdict(const struct msg_result *m)
{
    return m->status == 0 ? ACCEPT : m->status == CORPUS_INCOMPLETE ? INCOMPLETE : REJECT;
}

static const char *verdict_name(enum verdict v)
{
    return v == ACCEPT ? "accept" : v == REJECT ? "reject" : "incomplete";
}

static void note(char *why, size_t cap, const char *what)
{
    size_t n = strlen(why);

    snprintf(why + n, cap - n, "%s; ", what);
}

static void compare(const struct msg_result *m, const struct hp_result *h, char *why,
                    size_t cap)
{
    char tmp[256];
    int i;

    why[0] = '\0';
    if (ours_verdict(m) != h->verdict) {
        snprintf(tmp, sizeof tmp, "we %s (%d), http-parser %s (%s)",
                 verdict_name(ours_verdict(m)), m->status, verdict_name(h->verdict), h->err);
        note(why, cap, tmp);
        return;
    }
    if (h->verdict != ACCEPT)
        return;
    if (strcmp(sp_http_method_name(m->req.method),
               http_method_str((enum http_method)h->method)) != 0)
        note(why, cap, "method");
    if (m->req.target_len != h->url_len || memcmp(m->req.target, h->url, h->url_len) != 0)
        note(why, cap, "target");
    if (h->major != 1 || (int)h->minor != m->req.minor_version) {
        snprintf(tmp, sizeof tmp, "version: we 1.%d, http-parser %u.%u",
                 m->req.minor_version, h->major, h->minor);
        note(why, cap, tmp);
    }
    if (m->req.keep_alive != (h->keep_alive != 0))
        note(why, cap, "keep-alive");
    if ((int)m->req.num_headers != h->nheaders) {
        snprintf(tmp, sizeof tmp, "header count: we %zu, http-parser %d",
                 m->req.num_headers, h->nheaders);
        note(why, cap, tmp);
    } else {
        for (i = 0; i < h->nheaders; i++) {
            const sp_http_header *x = &m->req.headers[i];

            if (x->name_len != h->name_len[i] ||
                memcmp(x->name, h->names[i], x->name_len) != 0 ||
                (x->value_len < sizeof h->values[0] &&
                 (x->value_len != h->value_len[i] ||
                  memcmp(x->value, h->values[i], x->value_len) != 0))) {
                snprintf(tmp, sizeof tmp, "header %d: we \"%.*s\", http-parser \"%.*s\"", i,
                         (int)(x->value_len < 40 ? x->value_len : 40), x->value,
                         (int)(h->value_len[i] < 40 ? h->value_len[i] : 40), h->values[i]);
                note(why, cap, tmp);
            }
        }
    }
    if (m->body_len != h->body_len || memcmp(m->body, h->body, m->body_len) != 0)
        note(why, cap, "body");
    if (m->consumed != h->consumed) {
        snprintf(tmp, sizeof tmp, "consumed: we %zu, http-parser %zu", m->consumed,
                 h->consumed);
        note(why, cap, tmp);
    }
}

static const struct known_difference *find_known(const char *name)
{
    size_t i;

    for (i = 0; known[i].name; i++)
        if (strcmp(known[i].name, name) == 0)
            return &known[i];
    return NULL;
}

static void test_differential(void **state)
{
    static struct msg_result ours;
    static struct hp_result theirs;
    struct guard g;
    size_t i, failures = 0, differences = 0;

    (void)state;
    corpus_init();
    guard_init(&g, 1 << 16);
    for (i = 0; i < corpus_count; i++) {
        const struct corpus_case *c = &corpus[i];
        const struct known_difference *k = find_known(c->name);
        char *buf = guard_place(&g, c->raw, c->len);
        char why[2048], mine[1024];

        msg_parse(buf, c->len, NULL, 0, c->limits, &ours);
        corpus_check(c, &ours, mine, sizeof mine);
        if (mine[0]) {
            print_error("case %s: our result is not the expected one: %s\n", c->name, mine);
            failures++;
            continue;
        }
        hp_parse(buf, c->len, &theirs);
        compare(&ours, &theirs, why, sizeof why);
        if (why[0] && !k) {
            print_error("case %s: unlisted difference with http-parser: %s\n", c->name, why);
            failures++;
        } else if (!why[0] && k) {
            print_error("case %s: listed as a difference, but both agree now\n", c->name);
            failures++;
        } else if (why[0]) {
            differences++;
        }
    }
    for (i = 0; known[i].name; i++) {
        bool present = false;
        size_t j;

        for (j = 0; j < corpus_count; j++)
            present |= strcmp(corpus[j].name, known[i].name) == 0;
        if (!present) {
            print_error("known difference %s names no corpus case\n", known[i].name);
            failures++;
        }
    }
    guard_free(&g);
    print_message("%zu cases, %zu known differences with http-parser %lu.%lu.%lu\n",
                  corpus_count, differences, (http_parser_version() >> 16) & 255,
                  (http_parser_version() >> 8) & 255, http_parser_version() & 255);
    if (failures)
        fail_msg("%zu cases disagree with http-parser in ways not listed (or listed but "
                 "no longer differing)", failures);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
