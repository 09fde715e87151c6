/* The request-head parser: a resumable state machine over the caller's
 * bytes, in the nginx / picohttpparser style.  Each state is a tight loop
 * over a byte-class table; the state, the resume offset and the start of the
 * token being scanned are all that is kept between calls, so a head that
 * arrives one byte at a time costs the same work as one that arrives whole.
 *
 * Limits are enforced by clamping the scan end: a loop never runs past the
 * last byte the limit allows, and running into that clamp is the error.  So
 * the verdict depends only on the bytes, never on how they were split. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

const sp_http_limits sp_http_default_limits = {
    .max_request_line = SP_HTTP_REQUEST_LINE_MAX_DEFAULT,
    .max_header_bytes = SP_HTTP_HEADER_BYTES_MAX_DEFAULT,
    .max_headers = SP_HTTP_HEADERS_MAX_DEFAULT,
    .max_body = SP_HTTP_BODY_MAX_DEFAULT,
};

#define T SP__HTTP_TCHAR
#define G SP__HTTP_TARGET
#define V SP__HTTP_VALUE
/* Generated from the RFC 9110 grammars; the tests check it byte by byte. */
const uint8_t sp__http_class[256] = {
    /* 0x00-0x1f: controls; only HTAB is a field-value byte */
    0, 0, 0, 0, 0, 0, 0, 0, 0, V, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* SP ! " # $ % & ' ( ) * + , - . / */
    V, T | G | V, G | V, T | V, T | G | V, T | G | V, T | G | V, T | G | V,
    G | V, G | V, T | G | V, T | G | V, G | V, T | G | V, T | G | V, G | V,
    /* 0-9 : ; < = > ? */
    T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, T | G | V,
    T | G | V, T | G | V, T | G | V, T | G | V, G | V, G | V, G | V, G | V,
    G | V, G | V,
    /* @ A-O */
    G | V, T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, T | G | V,
    T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, T | G | V,
    T | G | V, T | G | V, T | G | V,
    /* P-Z [ \ ] ^ _ */
    T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, T | G | V,
    T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, G | V, G | V,
    G | V, T | G | V, T | G | V,
    /* ` a-o */
    T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, T | G | V,
    T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, T | G | V,
    T | G | V, T | G | V, T | G | V, T | G | V,
    /* p-z { | } ~ DEL */
    T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, T | G | V,
    T | G | V, T | G | V, T | G | V, T | G | V, T | G | V, G | V, T | G | V,
    G | V, T | G | V, 0,
    /* 0x80-0xff: obs-text, opaque in field values only */
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
};
#undef T
#undef G
#undef V

/* Parser states; each names what the next byte must start or continue. */
enum {
    S_START = 0, /* request line or an empty line before it */
    S_START_LF,  /* an empty line's LF */
    S_METHOD,
    S_TARGET,
    S_VERSION,
    S_LINE_LF,   /* the request line's LF */
    S_FIELD,     /* a field line or the final CRLF */
    S_NAME,
    S_OWS,       /* OWS after the colon */
    S_VALUE,
    S_FIELD_LF,
    S_END_LF,    /* the final LF */
    S_DONE,
    S_ERROR,
};

/* What the field lines said, gathered as they complete. */
enum {
    F_LENGTH = 1u << 0,
    F_TE = 1u << 1,
    F_TE_LAST_CHUNKED = 1u << 2, /* the last coding so far is chunked */
    F_TE_EARLY = 1u << 3,        /* chunked seen before the last coding */
    F_TE_OTHER = 1u << 4,        /* a coding other than chunked */
    F_HOST = 1u << 5,
    F_CLOSE = 1u << 6,
    F_KEEP = 1u << 7,
    F_EXPECT = 1u << 8,
};

/* "OPTIONS" and "DELETE" are the longest methods we know: a method that has
 * grown past 7 bytes is unknown (501) without waiting for its end. */
#define METHOD_SCAN_MAX 8

/* Content-Length is kept below 2^63 so that it fits off_t and ssize_t. */
#define LENGTH_MAX ((uint64_t)INT64_MAX)

static const char HTTP_VERSION_PREFIX[] = "HTTP/";

void sp_http_request_init(sp_http_request *req, sp_http_header *headers,
                          size_t max_headers, const sp_http_limits *limits)
{
    memset(req, 0, sizeof *req);
    req->headers = headers;
    req->priv_.limits = limits ? limits : &sp_http_default_limits;
    req->priv_.max_headers = req->priv_.limits->max_headers < max_headers
                                 ? req->priv_.limits->max_headers
                                 : max_headers;
}

void sp_http_request_reset(sp_http_request *req)
{
    sp_http_request_init(req, req->headers, req->priv_.max_headers,
                         req->priv_.limits);
}

/* Back to S_START for the buffer at `base`, keeping the configuration. */
static void restart(sp_http_request *r, const char *base)
{
    struct sp__http_parse_state s = r->priv_;
    sp_http_header *h = r->headers;

    memset(r, 0, sizeof *r);
    r->headers = h;
    r->priv_.limits = s.limits;
    r->priv_.max_headers = s.max_headers;
    r->priv_.base = (uintptr_t)base;
}

static ssize_t fail(sp_http_request *r, int status)
{
    r->status = status;
    r->priv_.state = S_ERROR;
    return -(ssize_t)status;
}

bool sp__http_ieq(const char *s, size_t n, const char *z)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (z[i] == '\0' || sp__http_lower((unsigned char)s[i]) !=
                                 sp__http_lower((unsigned char)z[i]))
            return false;
    }
    return z[n] == '\0';
}

bool sp__http_list_next(const char **cur, const char *end, const char **elem,
                        size_t *elem_len)
{
    const char *p = *cur;

    for (;;) {
        const char *s, *e;

        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p >= end) {
            *cur = p;
            return false;
        }
        s = p;
        while (p < end && *p != ',')
            p++;
        e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            *elem = s;
            *elem_len = (size_t)(e - s);
            *cur = p;
            return true;
        }
    }
}

/* Field names are tokens, so OR-ing 0x20 lowers letters and maps no other
 * token byte onto a lowercase letter or '-': a cheap exact comparison. */
static inline bool name_is(const char *n, const char *lower, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (((unsigned char)n[i] | 0x20) != (unsigned char)lower[i])
            return false;
    return true;
}

static int on_content_length(sp_http_request *r, const sp_http_header *h)
{
    uint64_t v = 0;
    size_t i;

    /* Even an identical repeat is refused: a peer that frames twice is
     * either broken or probing for a parser that picks the other one. */
    if (r->priv_.flags & F_LENGTH || h->value_len == 0)
        return 400;
    for (i = 0; i < h->value_len; i++) {
        unsigned d = (unsigned char)h->value[i] - '0';

        if (d > 9)
            return 400;
        if (v > (LENGTH_MAX - d) / 10) /* before the multiply, never after */
            return 400;
        v = v * 10 + d;
    }
    r->content_length = v;
    r->priv_.flags |= F_LENGTH;
    return 0;
}

static int on_transfer_encoding(sp_http_request *r, const sp_http_header *h)
{
    const char *cur = h->value, *end = h->value + h->value_len, *e;
    size_t n;
    unsigned f = r->priv_.flags | F_TE;

    /* Lists on several lines are one list (RFC 9110 §5.3), so the flags
     * carry over from line to line.  Valid: chunked once, and last. */
    while (sp__http_list_next(&cur, end, &e, &n)) {
        if (f & F_TE_LAST_CHUNKED)
            f |= F_TE_EARLY;
        if (sp__http_ieq(e, n, "chunked")) {
            f |= F_TE_LAST_CHUNKED;
        } else {
            f &= ~F_TE_LAST_CHUNKED;
            f |= F_TE_OTHER;
        }
    }
    r->priv_.flags = f;
    return 0;
}

static void on_connection(sp_http_request *r, const sp_http_header *h)
{
    const char *cur = h->value, *end = h->value + h->value_len, *e;
    size_t n;

    while (sp__http_list_next(&cur, end, &e, &n)) {
        if (sp__http_ieq(e, n, "close"))
            r->priv_.flags |= F_CLOSE;
        else if (sp__http_ieq(e, n, "keep-alive"))
            r->priv_.flags |= F_KEEP;
    }
}

/* Called once per complete field line; returns 0 or the status to refuse. */
static int on_header(sp_http_request *r, const sp_http_header *h)
{
    switch (h->name_len) {
    case 4:
        if (name_is(h->name, "host", 4)) {
            if (r->priv_.flags & F_HOST)
                return 400;
            r->priv_.flags |= F_HOST;
        }
        break;
    case 6:
        if (name_is(h->name, "expect", 6) &&
            sp__http_ieq(h->value, h->value_len, "100-continue"))
            r->priv_.flags |= F_EXPECT;
        break;
    case 10:
        if (name_is(h->name, "connection", 10))
            on_connection(r, h);
        break;
    case 14:
        if (name_is(h->name, "content-length", 14))
            return on_content_length(r, h);
        break;
    case 17:
        if (name_is(h->name, "transfer-encoding", 17))
            return on_transfer_encoding(r, h);
        break;
    default:
        break;
    }
    return 0;
}

static sp_http_method match_method(const unsigned char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return SP_HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return SP_HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0)
            return SP_HTTP_HEAD;
        if (memcmp(m, "POST", 4) == 0)
            return SP_HTTP_POST;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return SP_HTTP_PATCH;
        if (memcmp(m, "TRACE", 5) == 0)
            return SP_HTTP_TRACE;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return SP_HTTP_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return SP_HTTP_OPTIONS;
        break;
    default:
        break;
    }
    return SP_HTTP_UNKNOWN;
}

/* Classifies the request-target and sets path and query; 0 or 400. */
static int on_target(sp_http_request *r, const char *t, size_t n)
{
    const char *end = t + n, *path, *q;

    r->target = t;
    r->target_len = n;
    if (t[0] == '/') {
        path = t;
    } else if (n == 1 && t[0] == '*') {
        if (r->method != SP_HTTP_OPTIONS)
            return 400;
        r->path = t;
        r->path_len = 1;
        return 0;
    } else {
        /* absolute-form: http:// or https://, then authority, then path */
        size_t skip;
        const char *auth;

        if (n >= 7 && sp__http_ieq(t, 7, "http://"))
            skip = 7;
        else if (n >= 8 && sp__http_ieq(t, 8, "https://"))
            skip = 8;
        else
            return 400;
        auth = t + skip;
        path = auth;
        while (path < end && *path != '/' && *path != '?')
            path++;
        if (path == auth || memchr(auth, '@', (size_t)(path - auth)))
            return 400; /* no host, or userinfo (RFC 9110 §4.2.4) */
    }
    q = memchr(path, '?', (size_t)(end - path));
    if (q) {
        r->query = q + 1;
        r->query_len = (size_t)(end - q - 1);
    } else {
        q = end;
    }
    if (q == path) {
        /* absolute-form without a path means "/" (RFC 9112 §3.2.1) */
        r->path = "/";
        r->path_len = 1;
    } else {
        r->path = path;
        r->path_len = (size_t)(q - path);
    }
    return 0;
}

/* The framing and connection verdict once the head is complete. */
static int on_head_end(sp_http_request *r)
{
    unsigned f = r->priv_.flags;

    if (f & F_TE) {
        if (f & F_LENGTH)
            return 400; /* RFC 9112 §6.3 rule 3: refuse, never guess */
        if (r->minor_version == 0)
            return 400; /* §6.1: TE in 1.0 means faulty framing */
        if (!(f & F_TE_LAST_CHUNKED) || f & F_TE_EARLY)
            return 400; /* §6.3 rule 4: length cannot be determined */
        if (f & F_TE_OTHER)
            return 501; /* §6.1: a coding we do not implement */
        r->body_kind = SP_HTTP_BODY_CHUNKED;
    } else if (f & F_LENGTH) {
        if (r->content_length > r->priv_.limits->max_body)
            return 413;
        r->body_kind = SP_HTTP_BODY_LENGTH;
    }
    if (r->minor_version == 1 && !(f & F_HOST))
        return 400; /* §3.2: a 1.1 request without Host */
    if (r->minor_version == 1)
        r->keep_alive = !(f & F_CLOSE);
    else
        r->keep_alive = (f & F_KEEP) && !(f & F_CLOSE);
    r->expect_continue = r->minor_version == 1 && (f & F_EXPECT);
    return 0;
}

/* Bulk scans: field values and targets are most of a head's bytes, so
 * they are skipped 16 at a time where SSE2 exists (all of x86-64).  Each
 * stops at or before the first byte its class refuses and never reads at or
 * past `lim`; the byte loops after them finish the job, so the result is
 * the same with or without them. */
#ifdef __SSE2__
static inline const unsigned char *skip_value16(const unsigned char *p,
                                                const unsigned char *lim)
{
    const __m128i ctl_max = _mm_set1_epi8(0x1f);
    const __m128i tab = _mm_set1_epi8('\t');
    const __m128i del = _mm_set1_epi8(0x7f);

    while (lim - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* unsigned x <= 0x1f, without HTAB; or DEL */
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, ctl_max), x);
        __m128i bad = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, tab), ctl),
                                   _mm_cmpeq_epi8(x, del));
        int m = _mm_movemask_epi8(bad);

        if (m)
            return p + __builtin_ctz((unsigned)m);
        p += 16;
    }
    return p;
}

static inline const unsigned char *skip_target16(const unsigned char *p,
                                                 const unsigned char *lim)
{
    const __m128i sp = _mm_set1_epi8(0x20);
    const __m128i tilde = _mm_set1_epi8(0x7e);
    const __m128i hash = _mm_set1_epi8('#');

    while (lim - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* unsigned x <= 0x20, or x > 0x7e, or '#' */
        __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(x, sp), x);
        __m128i high = _mm_xor_si128(_mm_cmpeq_epi8(_mm_max_epu8(x, tilde), tilde),
                                     _mm_set1_epi8(-1));
        __m128i bad = _mm_or_si128(_mm_or_si128(low, high), _mm_cmpeq_epi8(x, hash));
        int m = _mm_movemask_epi8(bad);

        if (m)
            return p + __builtin_ctz((unsigned)m);
        p += 16;
    }
    return p;
}
#else
static inline const unsigned char *skip_value16(const unsigned char *p,
                                                const unsigned char *lim)
{
    (void)lim;
    return p;
}

static inline const unsigned char *skip_target16(const unsigned char *p,
                                                 const unsigned char *lim)
{
    (void)lim;
    return p;
}
#endif

/* Offset one past the last header-section byte the limit allows. */
static inline size_t field_limit(const struct sp__http_parse_state *s)
{
    size_t max = s->limits->max_header_bytes;

    return max > SIZE_MAX - s->hdr_start ? SIZE_MAX : s->hdr_start + max;
}

/* Out of bytes in state `st`: the limit `cap` (an offset) was reached, which
 * is the error `code`, or the input ended before it. */
#define SUSPEND(st, cap, code)                               \
    do {                                                     \
        if ((size_t)(p - b) >= (cap))                        \
            return fail(r, (code));                          \
        r->priv_.state = (st);                               \
        r->priv_.pos = (size_t)(p - b);                      \
        return SP_HTTP_AGAIN;                                \
    } while (0)

ssize_t sp_http_parse_request(sp_http_request *r, const char *buf, size_t len)
{
    struct sp__http_parse_state *s = &r->priv_;
    const unsigned char *b = (const unsigned char *)buf, *p, *end, *lim;
    size_t line_cap, field_cap;
    sp_http_header *h;
    int rc;

    if (s->state == S_ERROR)
        return -(ssize_t)r->status;
    if (s->state == S_DONE || s->base != (uintptr_t)buf)
        restart(r, buf);
    if (len < s->pos) {
        fprintf(stderr, "spindle: sp_http_parse_request: len %zu is shorter "
                        "than the %zu bytes already parsed\n", len, s->pos);
        abort();
    }
    /* Nothing new (an empty read, or buf == NULL): the state is unchanged,
     * and a limit was never reached at pos, or we would have failed. */
    if (len == s->pos)
        return SP_HTTP_AGAIN;
    p = b + s->pos;
    end = b + len;
    line_cap = s->limits->max_request_line;
    field_cap = field_limit(s);
    /* Loops in request-line states run to `lim`; header states reset it. */
    lim = len < line_cap ? end : b + line_cap;

    switch (s->state) {
    case S_START: goto st_start;
    case S_START_LF: goto st_start_lf;
    case S_METHOD: goto st_method;
    case S_TARGET: goto st_target;
    case S_VERSION: goto st_version;
    case S_LINE_LF: goto st_line_lf;
    default: break;
    }
    lim = len < field_cap ? end : b + field_cap;
    switch (s->state) {
    case S_FIELD: goto st_field;
    case S_NAME: goto st_name;
    case S_OWS: goto st_ows;
    case S_VALUE: goto st_value;
    case S_FIELD_LF: goto st_field_lf;
    case S_END_LF: goto st_end_lf;
    default: assert(!"unreachable parser state"); abort();
    }

st_start:
    if (p >= lim)
        SUSPEND(S_START, line_cap, 414);
    if (*p == '\r') {
        p++;
        goto st_start_lf;
    }
    s->mark = (size_t)(p - b);
    goto st_method;

st_start_lf:
    if (p >= lim)
        SUSPEND(S_START_LF, line_cap, 414);
    if (*p++ != '\n')
        return fail(r, 400);
    goto st_start;

st_method: {
    const unsigned char *m = b + s->mark;
    const unsigned char *mlim = (size_t)(lim - m) > METHOD_SCAN_MAX ? m + METHOD_SCAN_MAX : lim;

    while (p < mlim && sp__http_is_tchar(*p))
        p++;
    if (p >= mlim) {
        if (p == m + METHOD_SCAN_MAX)
            return fail(r, 501);
        SUSPEND(S_METHOD, line_cap, 414);
    }
    if (*p != ' ' || p == m)
        return fail(r, 400);
    r->method = match_method(m, (size_t)(p - m));
    if (r->method == SP_HTTP_UNKNOWN)
        return fail(r, 501);
    p++;
    s->mark = (size_t)(p - b);
}
    /* fall through */
st_target:
    p = skip_target16(p, lim);
    while (p < lim && (sp__http_class[*p] & SP__HTTP_TARGET))
        p++;
    if (p >= lim)
        SUSPEND(S_TARGET, line_cap, 414);
    if (*p != ' ' || p == b + s->mark)
        return fail(r, 400);
    if ((rc = on_target(r, (const char *)b + s->mark, (size_t)(p - b - s->mark))))
        return fail(r, rc);
    p++;
    s->mark = (size_t)(p - b);
    /* The common version in one comparison; any split or other version
     * goes through the byte loop below. */
    if (lim - p >= 10 && memcmp(p, "HTTP/1.1\r\n", 10) == 0) {
        r->minor_version = 1;
        p += 10;
        goto line_done;
    }

st_version:
    while (p < lim) {
        size_t i = (size_t)(p - b) - s->mark;
        unsigned char c = *p;

        if (i < 5) {
            if (c != (unsigned char)HTTP_VERSION_PREFIX[i])
                return fail(r, 400);
        } else if (i == 5 || i == 7) {
            if (c < '0' || c > '9')
                return fail(r, 400);
        } else if (i == 6) {
            if (c != '.')
                return fail(r, 400);
        } else {
            if (c != '\r')
                return fail(r, 400);
            if (b[s->mark + 5] != '1')
                return fail(r, 505);
            r->minor_version = b[s->mark + 7] == '0' ? 0 : 1;
            p++;
            goto st_line_lf;
        }
        p++;
    }
    SUSPEND(S_VERSION, line_cap, 414);

st_line_lf:
    if (p >= lim)
        SUSPEND(S_LINE_LF, line_cap, 414);
    if (*p++ != '\n')
        return fail(r, 400);
line_done:
    s->hdr_start = (size_t)(p - b);
    field_cap = field_limit(s);
    lim = len < field_cap ? end : b + field_cap;

st_field:
    if (p >= lim)
        SUSPEND(S_FIELD, field_cap, 431);
    if (*p == '\r') {
        p++;
        goto st_end_lf;
    }
    /* SP/HTAB here is obs-fold (or whitespace before the first field),
     * ':' an empty name, LF a bare line end: all refused. */
    if (!sp__http_is_tchar(*p))
        return fail(r, 400);
    if (r->num_headers >= s->max_headers)
        return fail(r, 431);
    s->mark = (size_t)(p - b);
    p++;

st_name:
    while (p < lim && sp__http_is_tchar(*p))
        p++;
    if (p >= lim)
        SUSPEND(S_NAME, field_cap, 431);
    if (*p != ':')
        return fail(r, 400); /* whitespace before the colon, or junk */
    h = &r->headers[r->num_headers];
    h->name = (const char *)b + s->mark;
    h->name_len = (size_t)(p - b) - s->mark;
    p++;

st_ows:
    while (p < lim && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= lim)
        SUSPEND(S_OWS, field_cap, 431);
    s->mark = (size_t)(p - b);

st_value:
    p = skip_value16(p, lim);
    while (p < lim && (sp__http_class[*p] & SP__HTTP_VALUE))
        p++;
    if (p >= lim)
        SUSPEND(S_VALUE, field_cap, 431);
    if (*p != '\r')
        return fail(r, 400); /* a control byte, bare LF or NUL */
    {
        const unsigned char *v = b + s->mark, *e = p;

        h = &r->headers[r->num_headers];
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        h->value = (const char *)v;
        h->value_len = (size_t)(e - v);
    }
    p++;

st_field_lf:
    if (p >= lim)
        SUSPEND(S_FIELD_LF, field_cap, 431);
    if (*p++ != '\n')
        return fail(r, 400);
    h = &r->headers[r->num_headers];
    if ((rc = on_header(r, h)))
        return fail(r, rc);
    r->num_headers++;
    goto st_field;

st_end_lf:
    if (p >= lim)
        SUSPEND(S_END_LF, field_cap, 431);
    if (*p++ != '\n')
        return fail(r, 400);
    if ((rc = on_head_end(r)))
        return fail(r, rc);
    s->state = S_DONE;
    s->pos = (size_t)(p - b);
    return (ssize_t)(p - b);
}

const sp_http_header *sp_http_find_header(const sp_http_request *req,
                                          const char *name)
{
    size_t i;

    for (i = 0; i < req->num_headers; i++) {
        const sp_http_header *h = &req->headers[i];

        if (sp__http_ieq(h->name, h->name_len, name))
            return h;
    }
    return NULL;
}

const char *sp_http_method_name(sp_http_method m)
{
    static const char *const names[] = {
        [SP_HTTP_UNKNOWN] = "", [SP_HTTP_GET] = "GET",
        [SP_HTTP_HEAD] = "HEAD", [SP_HTTP_POST] = "POST",
        [SP_HTTP_PUT] = "PUT", [SP_HTTP_DELETE] = "DELETE",
        [SP_HTTP_OPTIONS] = "OPTIONS", [SP_HTTP_TRACE] = "TRACE",
        [SP_HTTP_PATCH] = "PATCH",
    };

    if ((unsigned)m >= sizeof names / sizeof names[0])
        return "";
    return names[m];
}
