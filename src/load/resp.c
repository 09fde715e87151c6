/* The load generator's response parser: see resp.h.
 *
 * The head is parsed in one pass once it is whole (a loopback server's
 * head nearly always arrives in one read, so this is one memchr walk and
 * no state for half a header line); the body is consumed incrementally
 * without copying, the chunked framing byte by byte only around the chunk
 * size lines, with the data skipped in one step. */
#include "load/resp.h"

#include <string.h>
#include <strings.h>

void sp__resp_init(sp__resp *r, int head_only)
{
    memset(r, 0, sizeof *r);
    r->head_only = (uint8_t)(head_only != 0);
}

/* Finds the end of the head in buf[0, len): returns the length of the head
 * with its empty last line, or 0 if it is not all there.  An empty line is
 * "\n" or "\r\n" right after a "\n"; r->scanned remembers how far the
 * search got, so bytes arriving one at a time cost O(n) in all. */
static size_t head_end(sp__resp *r, const char *buf, size_t len)
{
    size_t i = r->scanned;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl)
            break;
        size_t at = (size_t)(nl - buf);
        if (at + 1 < len && buf[at + 1] == '\n')
            return at + 2;
        if (at + 2 < len && buf[at + 1] == '\r' && buf[at + 2] == '\n')
            return at + 3;
        if (at + 2 >= len) {
            i = at; /* the next line has not arrived: look again here */
            break;
        }
        i = at + 1;
    }
    r->scanned = i;
    return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Case-insensitive search for a token in a comma list ("keep-alive, Close"). */
static int list_has(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (is_blank(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_blank(v[e - 1]))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* The last coding of a Transfer-Encoding list is chunked. */
static int last_is_chunked(const char *v, size_t n)
{
    while (n > 0 && (is_blank(v[n - 1]) || v[n - 1] == ','))
        n--;
    size_t s = n;
    while (s > 0 && v[s - 1] != ',' && !is_blank(v[s - 1]))
        s--;
    return n - s == 7 && strncasecmp(v + s, "chunked", 7) == 0;
}

#define NAME_IS(p, n, lit) ((n) == sizeof(lit) - 1 && strncasecmp((p), (lit), (n)) == 0)

/* Parses the status line and the header lines of head[0, len) (len ends
 * with the empty line).  Returns 0 or -1. */
static int parse_head(sp__resp *r, const char *head, size_t len)
{
    const char *p = head, *end = head + len;
    const char *nl = memchr(p, '\n', len);
    size_t n = (size_t)(nl - p);
    if (n && p[n - 1] == '\r')
        n--;
    /* "HTTP/1.x SSS" then end of line or a space and the reason. */
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' ||
        p[8] != ' ' || (n > 12 && p[12] != ' '))
        return -1;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return -1;
    r->minor = p[7] - '0';
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    int keep = r->minor >= 1, conn_close = 0, conn_keep = 0, chunked = 0, te = 0;
    int have_len = 0;
    uint64_t clen = 0;
    p = nl + 1;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the empty line */
        if (is_blank(p[0]))
            return -1; /* obs-fold: obsolete, and nothing we need uses it */
        const char *colon = memchr(p, ':', n);
        if (!colon || colon == p)
            return -1;
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1, *ve = p + n;
        while (v < ve && is_blank(*v))
            v++;
        while (ve > v && is_blank(ve[-1]))
            ve--;
        size_t vlen = (size_t)(ve - v);
        if (NAME_IS(p, nlen, "content-length")) {
            if (vlen == 0 || vlen > 18)
                return -1; /* 18 digits cannot overflow 64 bits */
            uint64_t x = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return -1;
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            if (have_len && x != clen)
                return -1;
            have_len = 1;
            clen = x;
        } else if (NAME_IS(p, nlen, "transfer-encoding")) {
            te = 1;
            chunked = last_is_chunked(v, vlen);
        } else if (NAME_IS(p, nlen, "connection")) {
            conn_close |= list_has(v, vlen, "close");
            conn_keep |= list_has(v, vlen, "keep-alive");
        }
        p = nl + 1;
    }
    if (r->minor == 0 && conn_keep)
        keep = 1;
    if (conn_close)
        keep = 0;
    r->close = (uint8_t)!keep;
    /* Which body follows (RFC 9112 §6.3, the client's rules). */
    if (r->status < 200 || r->status == 204 || r->status == 304 || r->head_only) {
        r->state = SP__RESP_DONE;
    } else if (te) {
        if (!chunked)
            return -1; /* a final coding other than chunked: no way to frame it */
        r->state = SP__RESP_CHUNK_SIZE;
    } else if (have_len) {
        r->left = clen;
        r->state = clen ? SP__RESP_BODY_LEN : SP__RESP_DONE;
    } else {
        r->state = SP__RESP_BODY_CLOSE;
        r->close = 1;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Moves the chunked framing on over buf[0, len).  Returns the bytes used,
 * or -1. */
static ssize_t feed_chunked(sp__resp *r, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && r->state != SP__RESP_DONE) {
        char c = buf[i];
        switch (r->state) {
        case SP__RESP_CHUNK_SIZE: {
            int h = hexval(c);
            if (h >= 0) {
                if (r->left >> 56)
                    return -1; /* over 2^60: not a size anyone sends */
                r->left = r->left << 4 | (uint64_t)h;
                r->digits = 1;
                i++;
                break;
            }
            if (!r->digits)
                return -1;
            r->state = SP__RESP_CHUNK_EXT;
            break; /* c is looked at again there */
        }
        case SP__RESP_CHUNK_EXT:
            /* ";name=value" extensions and blanks are skipped to the LF;
             * a control byte other than CR or HTAB is not a size line. */
            i++;
            if (c == '\n') {
                r->digits = 0;
                r->state = r->left ? SP__RESP_CHUNK_DATA : SP__RESP_TRAILER;
            } else if ((unsigned char)c < 0x20 && c != '\r' && c != '\t') {
                return -1;
            }
            break;
        case SP__RESP_CHUNK_DATA: {
            size_t take = len - i < r->left ? len - i : (size_t)r->left;
            i += take;
            r->left -= take;
            if (!r->left)
                r->state = SP__RESP_CHUNK_CR;
            break;
        }
        case SP__RESP_CHUNK_CR:
            i++;
            if (c == '\r')
                r->state = SP__RESP_CHUNK_LF;
            else if (c == '\n')
                r->state = SP__RESP_CHUNK_SIZE;
            else
                return -1;
            break;
        case SP__RESP_CHUNK_LF:
            i++;
            if (c != '\n')
                return -1;
            r->state = SP__RESP_CHUNK_SIZE;
            break;
        case SP__RESP_TRAILER:
            i++;
            if (c == '\n')
                r->state = SP__RESP_DONE;
            else if (c == '\r')
                r->state = SP__RESP_TRAILER_CR;
            else
                r->state = SP__RESP_TRAILER_SKIP;
            break;
        case SP__RESP_TRAILER_CR:
            i++;
            if (c != '\n')
                return -1;
            r->state = SP__RESP_DONE;
            break;
        case SP__RESP_TRAILER_SKIP:
            i++;
            if (c == '\n')
                r->state = SP__RESP_TRAILER;
            break;
        default:
            return -1;
        }
    }
    return (ssize_t)i;
}

ssize_t sp__resp_feed(sp__resp *r, const char *buf, size_t len)
{
    size_t used = 0;
    for (;;) {
        switch (r->state) {
        case SP__RESP_HEAD: {
            /* Not HTTP at all (a server speaking another protocol): say so
             * now rather than wait for a blank line that may never come. */
            size_t pre = len - used < 7 ? len - used : 7;
            if (memcmp(buf + used, "HTTP/1.", pre) != 0)
                return -1;
            size_t h = head_end(r, buf + used, len - used);
            if (!h) {
                if (len - used >= SP__RESP_HEAD_MAX)
                    return -1;
                return (ssize_t)used;
            }
            if (h > SP__RESP_HEAD_MAX || parse_head(r, buf + used, h) < 0)
                return -1;
            used += h;
            r->scanned = 0;
            if (r->status >= 100 && r->status < 200 && r->status != 101) {
                /* An interim response: the real one follows. */
                int head_only = r->head_only;
                sp__resp_init(r, head_only);
                continue;
            }
            if (r->status == 101)
                return -1; /* we asked for no upgrade: no HTTP follows */
            break;
        }
        case SP__RESP_BODY_LEN: {
            size_t take = len - used < r->left ? len - used : (size_t)r->left;
            used += take;
            r->left -= take;
            if (!r->left)
                r->state = SP__RESP_DONE;
            break;
        }
        case SP__RESP_BODY_CLOSE:
            return (ssize_t)len; /* everything until the close */
        case SP__RESP_DONE:
            r->done = 1;
            return (ssize_t)used;
        default: {
            ssize_t n = feed_chunked(r, buf + used, len - used);
            if (n < 0)
                return -1;
            used += (size_t)n;
            break;
        }
        }
        if (r->state != SP__RESP_DONE && used == len)
            return (ssize_t)used;
    }
}

int sp__resp_eof(sp__resp *r)
{
    if (r->state == SP__RESP_BODY_CLOSE || r->state == SP__RESP_DONE) {
        r->state = SP__RESP_DONE;
        r->done = 1;
        return 1;
    }
    return 0;
}
