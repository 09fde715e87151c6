/* The service every model serves: the router and its simple answers.
 * It decides; the models wait (sleep, file I/O, a child process) their own
 * way and come back to the helpers here, in static.c and in cgi.c. */
#include <string.h>

#include "http_internal.h"

#define ALLOW_GET_HEAD "GET, HEAD"
#define ALLOW_CGI "GET, HEAD, POST"

#define STATIC_PREFIX "/static/"
#define CGI_PREFIX "/cgi-bin/"
#define LIT_LEN(s) (sizeof(s) - 1)

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes src once into out (NUL-terminated).  Returns the length,
 * or -400 for a broken escape or a decoded NUL, or -414 when it does not fit.
 * Decoding once is the point: "%252e" becomes the name "%2e", never ".". */
static ssize_t decode_path(const char *src, size_t n, char *out, size_t cap)
{
    size_t i, o = 0;

    if (n >= cap)
        return -414; /* the decoded path is never longer than the raw one */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];

        if (c == '%') {
            int hi, lo;

            if (n - i < 3 || (hi = hex_digit((unsigned char)src[i + 1])) < 0 ||
                (lo = hex_digit((unsigned char)src[i + 2])) < 0)
                return -400;
            c = (unsigned char)(hi << 4 | lo);
            if (c == 0)
                return -400;
            i += 2;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* A path that stays below the root whatever joins it: relative, no "." or
 * ".." segment, no backslash (a separator to some file systems and tools). */
static bool safe_relative(const char *p, size_t n)
{
    size_t i = 0;

    if (n == 0 || p[0] == '/' || memchr(p, '\\', n))
        return false;
    while (i < n) {
        size_t s = i;

        while (i < n && p[i] != '/')
            i++;
        if ((i - s == 1 && p[s] == '.') ||
            (i - s == 2 && p[s] == '.' && p[s + 1] == '.'))
            return false;
        i++;
    }
    return true;
}

/* A CGI script name: a plain file name of [A-Za-z0-9._-], not starting
 * with '.' (so neither dots-only nor a hidden file). */
static bool safe_script(const char *p, size_t n)
{
    size_t i;

    if (n == 0 || p[0] == '.')
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ms=N from the query: 0..SP_HTTP_SLEEP_MAX_MS, digits only; -1 otherwise. */
static int64_t sleep_ms(const char *q, size_t n)
{
    size_t i = 0;

    while (q && i < n) {
        size_t s = i, e;

        while (i < n && q[i] != '&')
            i++;
        e = i++;
        if (e - s >= 3 && memcmp(q + s, "ms=", 3) == 0) {
            uint64_t v = 0;
            size_t k;

            s += 3;
            /* six digits are enough to exceed the maximum, and cannot overflow */
            if (e == s || e - s > 6)
                return -1;
            for (k = s; k < e; k++) {
                unsigned d = (unsigned char)q[k] - '0';

                if (d > 9)
                    return -1;
                v = v * 10 + d;
            }
            return v <= SP_HTTP_SLEEP_MAX_MS ? (int64_t)v : -1;
        }
    }
    return -1;
}

static sp_http_action_kind respond(sp_http_action *act, int status,
                                   const char *allow)
{
    act->kind = SP_HTTP_ACT_RESPOND;
    act->status = status;
    act->allow = allow;
    act->arg[0] = '\0'; /* the decoded path is not part of the answer */
    act->arg_len = 0;
    return act->kind;
}

sp_http_action_kind sp_http_route(const sp_http_request *req,
                                  sp_http_action *act)
{
    bool get = req->method == SP_HTTP_GET || req->method == SP_HTTP_HEAD;
    ssize_t n;
    const char *p;

    act->kind = SP_HTTP_ACT_RESPOND;
    act->status = 404;
    act->allow = NULL;
    act->sleep_ms = 0;
    act->arg_len = act->info_off = act->info_len = 0;
    act->arg[0] = '\0';

    n = decode_path(req->path, req->path_len, act->arg, sizeof act->arg);
    if (n < 0)
        return respond(act, (int)-n, NULL);
    p = act->arg;

    if (n == 1 && p[0] == '/')
        return get ? respond(act, 200, NULL) : respond(act, 405, ALLOW_GET_HEAD);

    if ((size_t)n == LIT_LEN("/sleep") && memcmp(p, "/sleep", (size_t)n) == 0) {
        int64_t ms;

        if (!get)
            return respond(act, 405, ALLOW_GET_HEAD);
        ms = sleep_ms(req->query, req->query_len);
        if (ms < 0)
            return respond(act, 400, NULL);
        act->kind = SP_HTTP_ACT_SLEEP;
        act->status = 200;
        act->sleep_ms = (uint32_t)ms;
        act->arg[0] = '\0';
        return act->kind;
    }

    if ((size_t)n >= LIT_LEN(STATIC_PREFIX) &&
        memcmp(p, STATIC_PREFIX, LIT_LEN(STATIC_PREFIX)) == 0) {
        size_t rel = (size_t)n - LIT_LEN(STATIC_PREFIX);

        if (!get)
            return respond(act, 405, ALLOW_GET_HEAD);
        if (rel == 0)
            return respond(act, 404, NULL); /* no directory listings */
        if (!safe_relative(p + LIT_LEN(STATIC_PREFIX), rel))
            return respond(act, 403, NULL);
        memmove(act->arg, p + LIT_LEN(STATIC_PREFIX), rel + 1);
        act->arg_len = rel;
        act->kind = SP_HTTP_ACT_STATIC;
        act->status = 200;
        return act->kind;
    }

    if ((size_t)n >= LIT_LEN(CGI_PREFIX) &&
        memcmp(p, CGI_PREFIX, LIT_LEN(CGI_PREFIX)) == 0) {
        const char *name = p + LIT_LEN(CGI_PREFIX);
        const char *slash = strchr(name, '/');
        size_t name_len = slash ? (size_t)(slash - name) : strlen(name);
        size_t info_len = slash ? strlen(slash) : 0;

        if (!get && req->method != SP_HTTP_POST)
            return respond(act, 405, ALLOW_CGI);
        if (!safe_script(name, name_len))
            return respond(act, 403, NULL);
        /* arg becomes "name\0info\0": the name first, NUL-terminated for
         * exec, then PATH_INFO; both fit since the prefix was dropped. */
        memmove(act->arg, name, name_len);
        act->arg[name_len] = '\0';
        act->arg_len = name_len;
        act->info_off = name_len + 1;
        act->info_len = info_len;
        memmove(act->arg + act->info_off, name + name_len, info_len);
        act->arg[act->info_off + info_len] = '\0';
        act->kind = SP_HTTP_ACT_CGI;
        act->status = 200;
        return act->kind;
    }
    return respond(act, 404, NULL);
}

ssize_t sp_http_write_reply(char *buf, size_t cap, const sp_http_request *req,
                            const sp_http_action *act, bool keep_alive,
                            const char *date)
{
    return sp_http_write_status(buf, cap, req, act->status, act->allow,
                                keep_alive, date);
}
