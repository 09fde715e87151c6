/* spindle/http.h: the sans-I/O HTTP/1.1 core.
 *
 * Bytes in, bytes out.  Nothing here reads or writes a descriptor, sleeps,
 * allocates or includes the runtime; every server model (fork, threads, epoll,
 * callbacks, coroutines, io_uring) drives the same code and differs only in
 * how it waits.  The one exception is sp_http_static_open(), which makes
 * file-system calls (see its contract).
 *
 * A connection's life, in any model:
 *
 *     sp_http_request_init(&req, hdrs, SP_HTTP_HEADERS_MAX_DEFAULT, &limits);
 *     n = sp_http_parse_request(&req, buf, len);   // again as bytes arrive
 *     n == SP_HTTP_AGAIN: read more, call again with the same first byte
 *     n < 0:  write sp_http_write_error(-n), then close
 *     n > 0:  the head is buf[0, n); sp_http_body_init() and feed it the bytes
 *             after the head until sp_http_body_done(); then sp_http_route()
 *             and act; the next pipelined request starts after the body.
 *
 * WHAT IS ACCEPTED (decided once; tests/http/http_corpus.c holds a case for
 * each rule, run whole, split and against http-parser; RFC 9112 unless said
 * otherwise)
 *  - Lines end in CRLF.  A bare LF, a bare CR, or NUL anywhere: 400.
 *  - Empty lines (CRLF) before the request line are skipped (§2.2); they count
 *    against the request-line limit.
 *  - Request line: method SP request-target SP HTTP-version CRLF with exactly
 *    one SP between the parts (§3).
 *  - Methods (case-sensitive, RFC 9110 §9.1): GET HEAD POST PUT DELETE OPTIONS
 *    TRACE PATCH.  Any other token, CONNECT included (we are an origin server,
 *    not a tunnel), is 501 (at its 8th byte if it is that long); a method
 *    that is not a token is 400.
 *  - request-target: bytes 0x21-0x7E except '#' (a fragment is never part of
 *    a request-target, §3.2).  Origin-form ("/..."), absolute-form
 *    ("http://host/..." or "https://", §3.2.2; path is the part after the
 *    authority, "/" when empty) and "*" for OPTIONS only (§3.2.4); else 400.
 *  - Version "HTTP/" DIGIT "." DIGIT, case-sensitive (§2.3); else 400.  Major
 *    other than 1 (0.9, 2.0, ...): 505.  HTTP/1.2 to 1.9 are handled as 1.1
 *    (RFC 9110 §2.5: a higher minor version is processed as the highest one
 *    we implement).
 *  - Field line: token ":" OWS value OWS CRLF (§5).  Whitespace before the
 *    colon, an empty name, a line starting with SP/HTAB (obs-fold, §5.2) or a
 *    control byte other than HTAB in the value: 400.  Bytes 0x80-0xFF are
 *    accepted in values (obs-text) as opaque data.
 *  - Host: required on HTTP/1.1, at most one (§3.2): else 400.
 *  - Content-Length: digits only, no sign, no comma list, at most
 *    INT64_MAX (checked before each multiply); a second Content-Length line,
 *    even with the same value, is 400 (§6.3, rule 5).
 *  - Transfer-Encoding: the codings listed (over all TE lines) must end with
 *    exactly one "chunked" (case-insensitive); a final coding that is not
 *    chunked, chunked twice, an empty list, TE together with Content-Length,
 *    or TE in an HTTP/1.0 request: 400 (§6.1, §6.3).  Other codings before a
 *    final chunked ("gzip, chunked") are well-framed but not implemented: 501.
 *  - No Content-Length and no Transfer-Encoding: no body (§6.3, rule 7).
 *  - Keep-alive (§9.3): HTTP/1.1 unless "Connection: close"; HTTP/1.0 only
 *    with "Connection: keep-alive" and no "close".  Tokens are a
 *    case-insensitive comma list over all Connection lines.
 *  - "Expect: 100-continue" sets expect_continue on HTTP/1.1 only (RFC 9110
 *    §10.1.1); other expectations are ignored.
 *  - Limits, checked as the bytes arrive (defaults below): request line
 *    (with its CRLF and any leading empty lines) over max_request_line: 414;
 *    header section (every field line and the final CRLF) over
 *    max_header_bytes, or more than max_headers fields: 431; Content-Length
 *    over max_body: 413; chunked data over max_body: 413.
 *  - Chunked bodies (§7.1): chunk-size is 1*HEXDIG, overflow-checked before
 *    the shift; "0x", signs or spaces before the size: 400.  Extensions
 *    (BWS ";" ...) are checked for field-value bytes and skipped; a size
 *    line over 4 KiB is 400, over 16 KiB of extensions in one body 413.
 *    Trailer fields are checked like header fields (431 over
 *    max_header_bytes) and dropped (RFC 9110 §6.5.1).  Every chunk line and
 *    the data's CRLF must be CRLF.
 *
 * Errors: a parser or body error returns the negative HTTP status to answer;
 * the connection must be closed after that answer (the framing is lost).
 *
 * Threads: no function keeps global mutable state.  A request, a body
 * decoder, a writer and a date cache belong to one connection or one thread.
 */
#ifndef SPINDLE_HTTP_H
#define SPINDLE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct stat;

/* ---- Limits ---------------------------------------------------------------- */

/* 8 KiB: nginx's large_client_header_buffers line size; longer URIs are not
 * sent by browsers (they cap near 2 KiB for many servers' sake). */
#define SP_HTTP_REQUEST_LINE_MAX_DEFAULT 8192u
/* 8 KiB: the header section one read of a typical connection buffer holds;
 * larger sections are almost always attacks or cookie bloat. */
#define SP_HTTP_HEADER_BYTES_MAX_DEFAULT 8192u
/* 100: Apache's LimitRequestFields; browsers send 10 to 20. */
#define SP_HTTP_HEADERS_MAX_DEFAULT 100u
/* 1 MiB: the service's bodies are CGI form posts; nginx's client_max_body_size. */
#define SP_HTTP_BODY_MAX_DEFAULT (1024u * 1024u)

typedef struct sp_http_limits {
    size_t max_request_line;  /* bytes, request line and its CRLF: 414 */
    size_t max_header_bytes;  /* bytes, field lines and final CRLF: 431 */
    size_t max_headers;       /* field lines: 431 */
    uint64_t max_body;        /* decoded body bytes: 413 */
} sp_http_limits;

/* The defaults above; immutable, shared by every thread. */
extern const sp_http_limits sp_http_default_limits;

/* ---- Requests ---------------------------------------------------------------- */

/* Parser results that are not errors. */
#define SP_HTTP_AGAIN 0 /* need more bytes */

typedef enum sp_http_method {
    SP_HTTP_UNKNOWN = 0, /* never in a parsed request */
    SP_HTTP_GET,
    SP_HTTP_HEAD,
    SP_HTTP_POST,
    SP_HTTP_PUT,
    SP_HTTP_DELETE,
    SP_HTTP_OPTIONS,
    SP_HTTP_TRACE,
    SP_HTTP_PATCH,
} sp_http_method;

typedef enum sp_http_body_kind {
    SP_HTTP_BODY_NONE = 0, /* no Content-Length, no Transfer-Encoding */
    SP_HTTP_BODY_LENGTH,   /* Content-Length bytes follow the head */
    SP_HTTP_BODY_CHUNKED,  /* chunked coding follows the head */
} sp_http_body_kind;

/* A field line: pointers into the caller's buffer, value without OWS. */
typedef struct sp_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} sp_http_header;

/* One request being parsed, then parsed.  Caller-owned (embed it in the
 * connection); all pointers point into the buffer given to the last
 * sp_http_parse_request() call.  Fields are valid once that call returned a
 * head length; `status` is set after an error. */
typedef struct sp_http_request {
    sp_http_method method;
    int minor_version; /* 0 or 1: the version we process, see rules above */
    const char *target; /* request-target as received */
    size_t target_len;
    const char *path; /* target up to '?'; after the authority in absolute-form */
    size_t path_len;
    const char *query; /* after '?', raw; NULL when there is no '?' */
    size_t query_len;
    sp_http_header *headers; /* the array given to sp_http_request_init() */
    size_t num_headers;
    sp_http_body_kind body_kind;
    uint64_t content_length; /* with SP_HTTP_BODY_LENGTH */
    bool keep_alive;         /* the request's own rule (see above) */
    bool expect_continue;
    int status; /* after an error: the status to answer (400, 413, ...) */

    struct sp__http_parse_state { /* private: resumable parser state */
        const sp_http_limits *limits;
        size_t max_headers; /* smaller of the limit and the array's size */
        uintptr_t base;     /* the buffer of the last call */
        size_t pos;         /* next byte to look at */
        size_t mark;        /* start of the token being scanned */
        size_t hdr_start;   /* first byte of the header section */
        unsigned state;
        unsigned flags;
    } priv_;
} sp_http_request;

/* Prepares `req` for its first request.  `headers` (capacity `max_headers`)
 * receives the field lines; `limits` may be NULL for the defaults and must
 * outlive `req`.  Never fails. */
void sp_http_request_init(sp_http_request *req, sp_http_header *headers,
                          size_t max_headers, const sp_http_limits *limits);

/* Forgets any partial or finished request (and a sticky error). */
void sp_http_request_reset(sp_http_request *req);

/* Parses the request head at the start of buf[0, len).  Incremental: after
 * SP_HTTP_AGAIN call again with the same bytes at the same offsets and more
 * after them; work already done is not repeated.  The buffer may move between
 * calls (the parse then restarts from its first byte).
 * Returns the head length (> 0: the body or the next request starts there),
 * SP_HTTP_AGAIN (0), or -status (-400, -413, -414, -431, -501, -505); an error
 * is sticky until reset.  After a head, the next call starts a new request.
 * Aborts, naming the misuse, if len is shorter than what was already parsed
 * at the same address. */
ssize_t sp_http_parse_request(sp_http_request *req, const char *buf, size_t len);

/* The first field named `name` (ASCII case-insensitive), or NULL. */
const sp_http_header *sp_http_find_header(const sp_http_request *req,
                                          const char *name);

/* "GET", "HEAD", ...; "" for SP_HTTP_UNKNOWN. */
const char *sp_http_method_name(sp_http_method m);

/* ---- Request bodies ------------------------------------------------------ */

/* Incremental body decoder: Content-Length or chunked.  Caller-owned. */
typedef struct sp_http_body {
    uint64_t total; /* decoded body bytes so far */
    struct sp__http_body_state { /* private */
        uint64_t remaining; /* bytes left in the body or the current chunk */
        uint64_t max_body;
        size_t max_trailer;
        size_t line;        /* bytes of the current chunk-size or trailer line */
        size_t ext_total;   /* chunk-extension bytes in this body */
        size_t trailer;     /* bytes of the trailer section */
        unsigned state;
        int status;
    } priv_;
} sp_http_body;

/* Prepares the decoder for the body `req` announced (none, length, chunked).
 * `limits` may be NULL for the defaults. */
void sp_http_body_init(sp_http_body *b, const sp_http_request *req,
                       const sp_http_limits *limits);

/* Consumes body bytes from buf[0, len) and returns how many (stop when done:
 * the rest is the next request).  *data, *data_len: one span of decoded body
 * bytes inside buf (no copy; may be empty); call again with the rest for more.
 * Returns -400 on bad chunk syntax, -413 over max_body, -431 over the trailer
 * limit; errors are sticky.  Returns 0 only when len is 0 or the body is done. */
ssize_t sp_http_body_parse(sp_http_body *b, const char *buf, size_t len,
                           const char **data, size_t *data_len);

/* True once the whole body (and its trailers) has been consumed. */
bool sp_http_body_done(const sp_http_body *b);

/* ---- Dates --------------------------------------------------------------- */

#define SP_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* The Date header value, reformatted at most once per second.  One per
 * thread or per connection: it is written without locks. */
typedef struct sp_http_date_cache {
    int64_t sec;        /* the second `text` shows */
    uint64_t refreshes; /* how often `text` was formatted (tests, stats) */
    char text[SP_HTTP_DATE_LEN + 1];
} sp_http_date_cache;

/* Empties the cache; the first sp_http_date_get() formats. */
void sp_http_date_cache_init(sp_http_date_cache *c);

/* The IMF-fixdate for `now` (seconds since the epoch, e.g. CLOCK_REALTIME),
 * NUL-terminated, valid until the next call with another second. */
const char *sp_http_date_get(sp_http_date_cache *c, int64_t now);

/* Writes the IMF-fixdate of `t` and a NUL into out; returns SP_HTTP_DATE_LEN.
 * Years outside 0..9999 are clamped. */
size_t sp_http_format_date(char out[SP_HTTP_DATE_LEN + 1], int64_t t);

/* Parses an HTTP-date in any of the three forms of RFC 9110 §5.6.7
 * (IMF-fixdate, RFC 850, asctime).  Returns 0 and sets *t, or -EINVAL. */
int sp_http_parse_date(const char *s, size_t len, int64_t *t);

/* ---- Response writer ----------------------------------------------------- */

/* The functions that take a request (sp_http_write_status, _write_reply,
 * _static_head, _cgi_write_head) take `keep_alive` as the server's wish
 * (false when shutting down, or after too many requests on a connection):
 * the answer keeps the connection only if req->keep_alive allows it too, and
 * says so in its Connection header.  The connection stays open exactly when
 * keep_alive && req->keep_alive (and, for CGI, the framing is not CLOSE). */

/* The interim answer to req->expect_continue, to write before reading the
 * body (RFC 9110 §10.1.1). */
#define SP_HTTP_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/* Appends to a caller buffer.  Running out of room is remembered, not
 * reported at each call: check sp_http_writer_finish() once. */
typedef struct sp_http_writer {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
} sp_http_writer;

void sp_http_writer_init(sp_http_writer *w, char *buf, size_t cap);

/* Returns the bytes written, or -ENOBUFS if any append did not fit. */
ssize_t sp_http_writer_finish(const sp_http_writer *w);

/* Appends n raw bytes (a body, a prepared head). */
void sp_http_put(sp_http_writer *w, const void *p, size_t n);

/* "HTTP/1.1 <status> <reason>", then "Server: spindle" and "Date: <date>"
 * (from sp_http_date_get).  We always answer HTTP/1.1 (RFC 9110 §2.5). */
void sp_http_put_status(sp_http_writer *w, int status, const char *date);

/* "<name>: <value>".  The caller vouches for the bytes (no CR/LF). */
void sp_http_put_header(sp_http_writer *w, const char *name, const char *value,
                        size_t value_len);

/* "Content-Length: <n>" */
void sp_http_put_content_length(sp_http_writer *w, uint64_t n);

/* "Transfer-Encoding: chunked"; frame the body with sp_http_put_chunk_*. */
void sp_http_put_chunked(sp_http_writer *w);

/* The Connection header the decision needs: "close" when !keep_alive,
 * "keep-alive" when keeping an HTTP/1.0 connection, none for HTTP/1.1. */
void sp_http_put_connection(sp_http_writer *w, int minor_version,
                            bool keep_alive);

/* The CRLF that ends the head. */
void sp_http_put_end(sp_http_writer *w);

/* Chunk framing: "<hex size>CRLF" before n > 0 data bytes, CRLF after them,
 * and "0CRLF CRLF" to end the body. */
void sp_http_put_chunk_begin(sp_http_writer *w, size_t n);
void sp_http_put_chunk_end(sp_http_writer *w);
void sp_http_put_last_chunk(sp_http_writer *w);

/* The reason phrase of a status ("Not Found"), "Unknown" when not listed. */
const char *sp_http_reason(int status);

/* A complete answer to a parser or body error (status 400, 413, 414, 431,
 * 501, 505 or any other): short text body, "Connection: close".
 * Returns its length, or -ENOBUFS (256 bytes always suffice). */
ssize_t sp_http_write_error(char *buf, size_t cap, int status,
                            const char *date);

/* A complete status page for `req`: 200 is the hello-world body, any other
 * status a one-line text body (none at all for 1xx, 204, 304); no body bytes
 * for HEAD; `allow` (may be NULL) becomes an Allow header.  Returns its
 * length, or -ENOBUFS. */
ssize_t sp_http_write_status(char *buf, size_t cap, const sp_http_request *req,
                             int status, const char *allow, bool keep_alive,
                             const char *date);

#define SP_HTTP_HELLO_BODY "Hello, World!\n"

/* ---- The service: routing ---------------------------------------------------- */

typedef enum sp_http_action_kind {
    SP_HTTP_ACT_RESPOND = 0, /* answer act->status now: sp_http_write_reply() */
    SP_HTTP_ACT_STATIC,      /* open act->arg under the root: sp_http_static_* */
    SP_HTTP_ACT_SLEEP,       /* wait act->sleep_ms, then sp_http_write_reply() */
    SP_HTTP_ACT_CGI,         /* run script act->arg: sp_http_cgi_* */
} sp_http_action_kind;

/* 1 KiB: decoded paths longer than this are refused (414); it keeps an
 * action small enough to live on a coroutine's stack. */
#define SP_HTTP_PATH_MAX 1024u
/* 60 s: the longest /sleep we serve; longer would outlive client timeouts. */
#define SP_HTTP_SLEEP_MAX_MS 60000u

typedef struct sp_http_action {
    sp_http_action_kind kind;
    int status;          /* RESPOND: status to answer (200 is hello-world) */
    const char *allow;   /* RESPOND 405: value of the Allow header */
    uint32_t sleep_ms;   /* SLEEP */
    /* STATIC: the safe relative path, percent-decoded, NUL-terminated.
     * CGI: the script name, NUL-terminated, then at arg + info_off the
     * decoded PATH_INFO ("" or "/..."), NUL-terminated. */
    char arg[SP_HTTP_PATH_MAX];
    size_t arg_len;
    size_t info_off;
    size_t info_len;
} sp_http_action;

/* Maps a parsed request to what the model must do; never fails.
 *   GET|HEAD /                    RESPOND 200 (hello-world)
 *   GET|HEAD /sleep?ms=N          SLEEP N (0..60000; missing or bad N: 400)
 *   GET|HEAD /static/<path>       STATIC (dot segments, '\', absolute: 403)
 *   GET|HEAD|POST /cgi-bin/<name>[/info]  CGI (bad name: 403)
 *   other methods on these paths: 405 with Allow; other paths: 404.
 * Paths are percent-decoded once before matching; a bad escape or %00: 400.
 * Returns act->kind. */
sp_http_action_kind sp_http_route(const sp_http_request *req,
                                  sp_http_action *act);

/* The complete answer to a RESPOND action, or to a SLEEP action once the
 * model has waited (200).  Returns its length, or -ENOBUFS. */
ssize_t sp_http_write_reply(char *buf, size_t cap, const sp_http_request *req,
                            const sp_http_action *act, bool keep_alive,
                            const char *date);

/* ---- The service: static files ----------------------------------------- */

/* Opens `rel` (a relative path from sp_http_route) for reading under the
 * directory `root_fd` so that nothing outside the root can be reached:
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), or where the kernel lacks
 * openat2 (ENOSYS) a component-by-component openat(O_NOFOLLOW) walk, which
 * refuses every symlink.  Fills *st; only regular files are opened.
 * Returns the fd (O_CLOEXEC), or -1 with errno (ENOENT, EXDEV or ELOOP for an
 * escape, EISDIR/EACCES for a non-regular file).  It makes blocking
 * file-system calls: models call it from a thread, the offload pool or
 * io_uring, never directly from an event-loop thread. */
int sp_http_static_open(int root_fd, const char *rel, struct stat *st);

/* The status a failed sp_http_static_open() errno maps to (404, 403, 500). */
int sp_http_static_errno_status(int err);

/* The Content-Type for a path's extension (case-insensitive): html css js
 * json txt png jpg gif svg ico wasm pdf; else application/octet-stream. */
const char *sp_http_content_type(const char *path, size_t len);

/* What sp_http_static_head() decided. */
typedef struct sp_http_file_reply {
    int status;      /* 200, 206, 304 or 416 */
    uint64_t offset; /* first file byte to send */
    uint64_t length; /* file bytes to send after the head (0 for HEAD, 304) */
} sp_http_file_reply;

/* Writes the response head for the regular file `path` described by `st`:
 * Content-Type, Content-Length, Last-Modified, Accept-Ranges; 304 when
 * If-Modified-Since is not older than the file; 206 for a single satisfiable
 * "bytes=a-b" Range (416 when unsatisfiable; other Range forms and any
 * If-Range are ignored and give 200).  Returns the head length, or -ENOBUFS. */
ssize_t sp_http_static_head(char *buf, size_t cap, const sp_http_request *req,
                            const char *path, size_t path_len,
                            const struct stat *st, bool keep_alive,
                            const char *date, sp_http_file_reply *out);

/* ---- The service: CGI (RFC 3875) ----------------------------------------- */

typedef struct sp_http_cgi_info {
    const char *remote_addr; /* "127.0.0.1" */
    unsigned remote_port;
    const char *server_name; /* NULL: the Host header without its port */
    unsigned server_port;
    int64_t content_length;  /* body bytes given to the script; -1: no body */
} sp_http_cgi_info;

/* Builds the CGI/1.1 environment for `act` (a CGI action) into envp (at most
 * env_cap entries, NULL-terminated) with the strings in buf[0, cap).
 * Headers become HTTP_<NAME> (duplicates joined with ", "), except
 * Content-Length/-Type (CONTENT_*), hop-by-hop ones, Authorization and
 * Proxy-Authorization, "Proxy" (httpoxy) and names holding '_' (they would
 * alias a '-' name).  Returns the variable count, or -ENOBUFS. */
int sp_http_cgi_env(const sp_http_request *req, const sp_http_action *act,
                    const sp_http_cgi_info *info, char **envp, size_t env_cap,
                    char *buf, size_t cap);

/* How the model frames the body that follows a head it wrote. */
typedef enum sp_http_framing {
    SP_HTTP_FRAME_NONE = 0, /* no body (HEAD, 204, 304) */
    SP_HTTP_FRAME_LENGTH,   /* exactly content_length bytes */
    SP_HTTP_FRAME_CHUNKED,  /* chunks via sp_http_put_chunk_*, then last */
    SP_HTTP_FRAME_CLOSE,    /* bytes until EOF, then close (HTTP/1.0) */
} sp_http_framing;

/* 8 KiB: the same bound as a request's header section. */
#define SP_HTTP_CGI_HEAD_MAX 8192u

/* The CGI header section of a script's output.  Caller-owned. */
typedef struct sp_http_cgi_reply {
    int status;              /* from Status:, or 302 with Location, or 200 */
    bool has_length;         /* the script sent a valid Content-Length */
    uint64_t content_length;
    size_t head_len;         /* output bytes that were CGI header lines */
    struct sp__http_cgi_state { /* private */
        uintptr_t base;
        size_t scan;
        int result;
    } priv_;
} sp_http_cgi_reply;

void sp_http_cgi_reply_init(sp_http_cgi_reply *c);

/* Parses the CGI header section at the start of out[0, len) (lines end in LF
 * or CRLF, a blank line ends them).  Incremental like sp_http_parse_request.
 * Returns the header length (the body starts there), SP_HTTP_AGAIN, or -502
 * for output that is not a valid CGI response (no Content-Type nor Location,
 * a bad line, a bad Status, over SP_HTTP_CGI_HEAD_MAX). */
ssize_t sp_http_cgi_parse(sp_http_cgi_reply *c, const char *out, size_t len);

/* Writes the HTTP head for a parsed CGI reply: our status line, Date and
 * Server, the script's fields (minus Status, framing and hop-by-hop ones),
 * and framing: the script's Content-Length, else chunked for HTTP/1.1, else
 * close (the head then says "Connection: close").  *framing says how to send
 * the body that follows out[c->head_len].  Returns the length, -ENOBUFS, or
 * -EINVAL if `c` is not a parsed reply. */
ssize_t sp_http_cgi_write_head(char *buf, size_t cap,
                               const sp_http_cgi_reply *c, const char *out,
                               const sp_http_request *req, bool keep_alive,
                               const char *date, sp_http_framing *framing);

#ifdef __cplusplus
}
#endif
#endif /* SPINDLE_HTTP_H */
