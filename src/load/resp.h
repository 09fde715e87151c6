/* The load generator's HTTP/1.1 response parser (internal to src/load).
 *
 * A client that measures servers needs to know only where a response ends,
 * its status, and whether the connection may carry the next request; so
 * this parser reads the status line and three headers (Content-Length,
 * Transfer-Encoding, Connection) and skips everything else without copying.
 * It is deliberately separate from the server's request parser (src/http):
 * a bug there must not hide behind the same bug here.
 *
 * Use: sp__resp_init() before each response, then sp__resp_feed() with the
 * bytes received, from the first byte not yet consumed, as they arrive:
 *
 *     n = sp__resp_feed(&r, buf, len);
 *     n < 0:   malformed (or a head over SP__RESP_HEAD_MAX): give up
 *     r.done:  the response ended after buf[0, n); bytes after it are the
 *              next response's
 *     else:    buf[0, n) was used; present buf[n, len) again, with more
 *              bytes after it.  The head is consumed only once whole, so
 *              until then n is 0 and the caller keeps accumulating.
 *
 * At end of file, sp__resp_eof() says whether that ended the response (a
 * body delimited by the close) or cut it short.
 *
 * Accepted: "HTTP/1.x SSS[ reason]" status lines; lines ending in CRLF or a
 * bare LF (clients are lenient about what they read, and this one must not
 * count a quirk as an error of the server); header names up to the colon,
 * values trimmed of blanks.  Refused (-1): anything else on the status line,
 * a header line without a colon or starting with a blank, a Content-Length
 * that is not digits or differs between two lines, Transfer-Encoding with a
 * final coding other than chunked, a bad chunk size line, a chunk not
 * followed by CRLF. */
#ifndef SP_LOAD_RESP_H
#define SP_LOAD_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The largest response head accepted: 16 KiB, what nginx allows for a
 * request head by default, and what a connection buffer holds. */
#define SP__RESP_HEAD_MAX 16384

enum {
    SP__RESP_HEAD = 0,   /* waiting for the whole head */
    SP__RESP_BODY_LEN,   /* Content-Length: `left` bytes to go */
    SP__RESP_BODY_CLOSE, /* until the server closes */
    SP__RESP_CHUNK_SIZE, /* hex digits of a chunk size */
    SP__RESP_CHUNK_EXT,  /* after the size: extensions, to LF */
    SP__RESP_CHUNK_DATA, /* `left` bytes of chunk data */
    SP__RESP_CHUNK_CR,   /* the CRLF after the data */
    SP__RESP_CHUNK_LF,
    SP__RESP_TRAILER,    /* at the start of a trailer line (or the end) */
    SP__RESP_TRAILER_CR, /* an empty line's CR seen: LF ends it all */
    SP__RESP_TRAILER_SKIP, /* inside a trailer field, to LF */
    SP__RESP_DONE,
};

typedef struct sp__resp {
    uint8_t state;
    uint8_t head_only;   /* the request was HEAD: no body whatever it says */
    uint8_t close;       /* the server will close: no next request here */
    uint8_t done;
    uint8_t digits;      /* chunk size digits seen */
    int status;
    int minor;           /* HTTP/1.minor */
    size_t scanned;      /* head bytes already searched for its end */
    uint64_t left;       /* body or chunk bytes to go */
} sp__resp;

/* Starts a response; head_only for the answer to a HEAD request. */
void sp__resp_init(sp__resp *r, int head_only);
/* Consumes bytes; see the top.  Returns the bytes used (>= 0) or -1. */
ssize_t sp__resp_feed(sp__resp *r, const char *buf, size_t len);
/* The server closed: returns 1 if that completes the response (sets done),
 * 0 if the response was cut short. */
int sp__resp_eof(sp__resp *r);

#endif
