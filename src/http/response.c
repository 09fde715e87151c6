/* The response writer: status line, common fields, framing, status pages.
 * Appends with memcpy of constant pieces; no printf on the hot path. */
#include <errno.h>
#include <string.h>

#include "http_internal.h"

void sp_http_writer_init(sp_http_writer *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = false;
}

ssize_t sp_http_writer_finish(const sp_http_writer *w)
{
    return w->overflow ? -ENOBUFS : (ssize_t)w->len;
}

void sp_http_put(sp_http_writer *w, const void *p, size_t n)
{
    sp__http_put(w, p, n);
}

/* A string literal, its length known at compile time. */
#define PUT_LIT(w, lit) sp__http_put((w), (lit), sizeof(lit) - 1)

void sp__http_put_u64(sp_http_writer *w, uint64_t v)
{
    char tmp[20]; /* UINT64_MAX has 20 digits */
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sp__http_put(w, tmp + i, sizeof tmp - i);
}

const char *sp_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* A status is three digits (RFC 9110 §15); anything else becomes 500. */
static int valid_status(int status)
{
    return status < 100 || status > 999 ? 500 : status;
}

/* "<ddd> " */
static void put_code(sp_http_writer *w, int status)
{
    char code[4] = { (char)('0' + status / 100), (char)('0' + status / 10 % 10),
                     (char)('0' + status % 10), ' ' };

    sp__http_put(w, code, sizeof code);
}

void sp_http_put_status(sp_http_writer *w, int status, const char *date)
{
    const char *reason;

    status = valid_status(status);
    reason = sp_http_reason(status);
    PUT_LIT(w, "HTTP/1.1 ");
    put_code(w, status);
    sp__http_put(w, reason, strlen(reason));
    PUT_LIT(w, "\r\nServer: spindle\r\nDate: ");
    sp__http_put(w, date, SP_HTTP_DATE_LEN);
    PUT_LIT(w, "\r\n");
}

void sp_http_put_header(sp_http_writer *w, const char *name, const char *value,
                        size_t value_len)
{
    sp__http_put(w, name, strlen(name));
    PUT_LIT(w, ": ");
    sp__http_put(w, value, value_len);
    PUT_LIT(w, "\r\n");
}

void sp_http_put_content_length(sp_http_writer *w, uint64_t n)
{
    PUT_LIT(w, "Content-Length: ");
    sp__http_put_u64(w, n);
    PUT_LIT(w, "\r\n");
}

void sp_http_put_chunked(sp_http_writer *w)
{
    PUT_LIT(w, "Transfer-Encoding: chunked\r\n");
}

void sp_http_put_connection(sp_http_writer *w, int minor_version,
                            bool keep_alive)
{
    if (!keep_alive)
        PUT_LIT(w, "Connection: close\r\n");
    else if (minor_version == 0)
        PUT_LIT(w, "Connection: keep-alive\r\n");
    /* HTTP/1.1 is persistent by default (RFC 9112 §9.3): nothing to say */
}

void sp_http_put_end(sp_http_writer *w)
{
    PUT_LIT(w, "\r\n");
}

void sp_http_put_chunk_begin(sp_http_writer *w, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[2 * sizeof(size_t) + 2];
    size_t i = sizeof tmp;

    tmp[--i] = '\n';
    tmp[--i] = '\r';
    do {
        tmp[--i] = hex[n & 15];
        n >>= 4;
    } while (n);
    sp__http_put(w, tmp + i, sizeof tmp - i);
}

void sp_http_put_chunk_end(sp_http_writer *w)
{
    PUT_LIT(w, "\r\n");
}

void sp_http_put_last_chunk(sp_http_writer *w)
{
    PUT_LIT(w, "0\r\n\r\n");
}

/* The head and one-line body of a status page. */
static void put_page(sp_http_writer *w, int status, bool head_only,
                     const char *allow, int minor_version, bool keep_alive,
                     const char *date)
{
    const char *reason;
    size_t rlen;

    status = valid_status(status);
    reason = sp_http_reason(status);
    rlen = strlen(reason);
    sp_http_put_status(w, status, date);
    if (status < 200 || status == 204 || status == 304) {
        /* these never carry a body, nor a length (RFC 9110 §8.6) */
        if (allow)
            sp_http_put_header(w, "Allow", allow, strlen(allow));
        sp_http_put_connection(w, minor_version, keep_alive);
        sp_http_put_end(w);
        return;
    }
    PUT_LIT(w, "Content-Type: text/plain; charset=utf-8\r\n");
    if (allow)
        sp_http_put_header(w, "Allow", allow, strlen(allow));
    if (status == 200) {
        PUT_LIT(w, "Content-Length: ");
        sp__http_put_u64(w, sizeof SP_HTTP_HELLO_BODY - 1);
        PUT_LIT(w, "\r\n");
        sp_http_put_connection(w, minor_version, keep_alive);
        sp_http_put_end(w);
        if (!head_only)
            PUT_LIT(w, SP_HTTP_HELLO_BODY);
        return;
    }
    /* the body is "<code> <reason>\n" */
    sp_http_put_content_length(w, 4 + rlen + 1);
    sp_http_put_connection(w, minor_version, keep_alive);
    sp_http_put_end(w);
    if (!head_only) {
        put_code(w, status);
        sp__http_put(w, reason, rlen);
        PUT_LIT(w, "\n");
    }
}

ssize_t sp_http_write_error(char *buf, size_t cap, int status,
                            const char *date)
{
    sp_http_writer w;

    sp_http_writer_init(&w, buf, cap);
    put_page(&w, status, false, NULL, 1, false, date);
    return sp_http_writer_finish(&w);
}

ssize_t sp_http_write_status(char *buf, size_t cap, const sp_http_request *req,
                             int status, const char *allow, bool keep_alive,
                             const char *date)
{
    sp_http_writer w;

    sp_http_writer_init(&w, buf, cap);
    put_page(&w, status, req->method == SP_HTTP_HEAD, allow,
             req->minor_version, keep_alive && req->keep_alive, date);
    return sp_http_writer_finish(&w);
}
