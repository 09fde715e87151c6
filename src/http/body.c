/* The request-body decoder: Content-Length or chunked (RFC 9112 §6, §7.1).
 *
 * A stream decoder: it keeps no pointer into earlier buffers, only counters,
 * so the caller may drop each buffer once it has used the returned span.
 * Data is never copied: each call hands back at most one span of body bytes
 * inside the caller's buffer, then returns, so a caller with a small buffer
 * processes chunked data as it arrives. */
#include <string.h>

#include "http_internal.h"

enum {
    B_DONE = 0,
    B_LENGTH,     /* Content-Length data */
    C_SIZE_FIRST, /* the first hex digit of a chunk size */
    C_SIZE,       /* more digits, BWS, ';' or CR */
    C_EXT_BWS,    /* BWS before ';' */
    C_EXT,        /* an extension, up to CR */
    C_SIZE_LF,
    C_DATA,
    C_DATA_CR,
    C_DATA_LF,
    C_TRAILER,    /* a trailer field line or the final CRLF */
    C_TNAME,
    C_TVALUE,
    C_TLF,
    C_END_LF,
    B_ERROR,
};

/* 4 KiB: a chunk-size line is a size and perhaps a short extension; the
 * bound stops an endless run of leading zeros or extension bytes. */
#define CHUNK_LINE_MAX 4096u
/* 16 KiB over a whole body: extensions are framing, not data, so they do not
 * count against max_body; this bound keeps a stream of one-byte chunks with
 * long extensions from costing unbounded work (Node.js CVE-2024-22019). */
#define CHUNK_EXT_TOTAL_MAX 16384u

void sp_http_body_init(sp_http_body *b, const sp_http_request *req,
                       const sp_http_limits *limits)
{
    const sp_http_limits *l = limits ? limits : &sp_http_default_limits;

    memset(b, 0, sizeof *b);
    b->priv_.max_body = l->max_body;
    b->priv_.max_trailer = l->max_header_bytes;
    switch (req->body_kind) {
    case SP_HTTP_BODY_LENGTH:
        b->priv_.remaining = req->content_length;
        b->priv_.state = req->content_length ? B_LENGTH : B_DONE;
        break;
    case SP_HTTP_BODY_CHUNKED:
        b->priv_.state = C_SIZE_FIRST;
        break;
    default:
        b->priv_.state = B_DONE;
        break;
    }
}

bool sp_http_body_done(const sp_http_body *b)
{
    return b->priv_.state == B_DONE;
}

static inline int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static ssize_t body_fail(struct sp__http_body_state *s, int status)
{
    s->state = B_ERROR;
    s->status = status;
    return -(ssize_t)status;
}

ssize_t sp_http_body_parse(sp_http_body *b, const char *buf, size_t len,
                           const char **data, size_t *data_len)
{
    struct sp__http_body_state *s = &b->priv_;
    const unsigned char *p, *end;

    *data = buf;
    *data_len = 0;
    if (s->state == B_ERROR)
        return -(ssize_t)s->status;
    if (len == 0)
        return 0; /* and buf may be NULL */
    p = (const unsigned char *)buf;
    end = p + len;

    while (p < end) {
        unsigned char c = *p;
        int d;

        switch (s->state) {
        case B_DONE:
            return (ssize_t)(p - (const unsigned char *)buf);

        case B_LENGTH:
        case C_DATA: {
            size_t avail = (size_t)(end - p);
            size_t take = avail < s->remaining ? avail : (size_t)s->remaining;

            *data = (const char *)p;
            *data_len = take;
            p += take;
            s->remaining -= take;
            b->total += take;
            if (s->remaining == 0)
                s->state = s->state == B_LENGTH ? B_DONE : C_DATA_CR;
            return (ssize_t)(p - (const unsigned char *)buf);
        }

        case C_SIZE_FIRST:
            if (hex_value(c) < 0)
                return body_fail(s, 400); /* no sign, no space, no "0x" */
            s->remaining = 0;
            s->line = 0;
            s->state = C_SIZE;
            /* fall through */
        case C_SIZE:
            if (++s->line > CHUNK_LINE_MAX)
                return body_fail(s, 400);
            d = hex_value(c);
            if (d >= 0) {
                /* Checked before the shift: the nginx chunked-size overflow
                 * (CVE-2013-2028) came from checking after. */
                if (s->remaining > (UINT64_MAX >> 4))
                    return body_fail(s, 400);
                s->remaining = s->remaining << 4 | (uint64_t)d;
                break;
            }
            if (s->remaining > s->max_body - b->total)
                return body_fail(s, 413);
            if (c == ' ' || c == '\t' || c == ';') {
                s->state = c == ';' ? C_EXT : C_EXT_BWS;
                break;
            }
            if (c != '\r')
                return body_fail(s, 400);
            s->state = C_SIZE_LF;
            break;

        case C_EXT_BWS:
        case C_EXT:
            if (++s->line > CHUNK_LINE_MAX)
                return body_fail(s, 400);
            if (++s->ext_total > CHUNK_EXT_TOTAL_MAX)
                return body_fail(s, 413);
            if (s->state == C_EXT_BWS) {
                /* BWS is only allowed before the ';' (RFC 9112 §7.1.1) */
                if (c == ';')
                    s->state = C_EXT;
                else if (c != ' ' && c != '\t')
                    return body_fail(s, 400);
                break;
            }
            if (c == '\r') {
                s->state = C_SIZE_LF;
                break;
            }
            if (!(sp__http_class[c] & SP__HTTP_VALUE))
                return body_fail(s, 400);
            break;

        case C_SIZE_LF:
            if (c != '\n')
                return body_fail(s, 400);
            if (s->remaining == 0) {
                s->state = C_TRAILER;
                s->trailer = 0;
            } else {
                s->state = C_DATA;
            }
            break;

        case C_DATA_CR:
            if (c != '\r')
                return body_fail(s, 400);
            s->state = C_DATA_LF;
            break;

        case C_DATA_LF:
            if (c != '\n')
                return body_fail(s, 400);
            s->state = C_SIZE_FIRST;
            break;

        case C_TRAILER:
        case C_TNAME:
        case C_TVALUE:
        case C_TLF:
        case C_END_LF:
            /* Trailers are checked like header fields and then dropped. */
            if (++s->trailer > s->max_trailer)
                return body_fail(s, 431);
            switch (s->state) {
            case C_TRAILER:
                if (c == '\r')
                    s->state = C_END_LF;
                else if (sp__http_is_tchar(c))
                    s->state = C_TNAME;
                else
                    return body_fail(s, 400); /* obs-fold, ':' or junk */
                break;
            case C_TNAME:
                if (c == ':')
                    s->state = C_TVALUE;
                else if (!sp__http_is_tchar(c))
                    return body_fail(s, 400);
                break;
            case C_TVALUE:
                if (c == '\r')
                    s->state = C_TLF;
                else if (!(sp__http_class[c] & SP__HTTP_VALUE))
                    return body_fail(s, 400);
                break;
            case C_TLF:
                if (c != '\n')
                    return body_fail(s, 400);
                s->state = C_TRAILER;
                break;
            default: /* C_END_LF */
                if (c != '\n')
                    return body_fail(s, 400);
                s->state = B_DONE;
                return (ssize_t)(p + 1 - (const unsigned char *)buf);
            }
            break;

        default:
            return body_fail(s, 400);
        }
        p++;
    }
    return (ssize_t)(p - (const unsigned char *)buf);
}
