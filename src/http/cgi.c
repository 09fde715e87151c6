/* CGI/1.1 (RFC 3875): the script's environment, and its output turned into
 * an HTTP response head.  Running the script (fork, exec, pipes, waiting)
 * belongs to the models; this file only shapes bytes. */
#include <errno.h>
#include <string.h>

#include "http_internal.h"

/* ---- environment (RFC 3875 §4.1) ---- */

struct env {
    char **envp;
    size_t env_cap, n;
    char *buf;
    size_t cap, len;
    size_t start; /* where the entry being built began */
    bool overflow;
};

static void env_put(struct env *e, const char *p, size_t n)
{
    if (n > e->cap - e->len) {
        e->overflow = true;
        return;
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static void env_begin(struct env *e)
{
    e->start = e->len;
}

/* NUL-terminates the entry and records it (one slot kept for the NULL). */
static void env_end(struct env *e)
{
    env_put(e, "", 1);
    if (e->overflow)
        return;
    if (e->n + 1 >= e->env_cap) {
        e->overflow = true;
        return;
    }
    e->envp[e->n++] = e->buf + e->start;
}

static void env_set(struct env *e, const char *name, const char *v, size_t n)
{
    env_begin(e);
    env_put(e, name, strlen(name));
    env_put(e, "=", 1);
    env_put(e, v, n);
    env_end(e);
}

static void env_sets(struct env *e, const char *name, const char *v)
{
    env_set(e, name, v, strlen(v));
}

static void env_setu(struct env *e, const char *name, uint64_t v)
{
    char tmp[20]; /* UINT64_MAX has 20 digits */
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    env_set(e, name, tmp + i, sizeof tmp - i);
}

/* Headers that never become HTTP_* variables: framing and hop-by-hop ones,
 * those with their own variables, credentials (RFC 3875 §4.1.18 lets a
 * server withhold them), and "Proxy", which would set HTTP_PROXY and steer
 * the script's own outgoing requests (httpoxy, CVE-2016-5385). */
static bool env_skip(const sp_http_header *h)
{
    static const char *const SKIP[] = {
        "content-length", "content-type", "connection", "keep-alive",
        "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
        "authorization", "proxy-authorization", "proxy",
    };
    size_t i;

    /* "X_Y" and "X-Y" would both become HTTP_X_Y; refusing '_' names keeps a
     * client from overriding a variable a proxy in front of us set. */
    if (memchr(h->name, '_', h->name_len))
        return true;
    for (i = 0; i < sizeof SKIP / sizeof SKIP[0]; i++)
        if (sp__http_ieq(h->name, h->name_len, SKIP[i]))
            return true;
    return false;
}

static bool same_name(const sp_http_header *a, const sp_http_header *b)
{
    size_t i;

    if (a->name_len != b->name_len)
        return false;
    for (i = 0; i < a->name_len; i++)
        if (sp__http_lower((unsigned char)a->name[i]) !=
            sp__http_lower((unsigned char)b->name[i]))
            return false;
    return true;
}

static void env_headers(struct env *e, const sp_http_request *req)
{
    size_t i, j, k;

    for (i = 0; i < req->num_headers; i++) {
        const sp_http_header *h = &req->headers[i];
        bool first = true;

        if (env_skip(h))
            continue;
        for (j = 0; j < i; j++)
            if (same_name(&req->headers[j], h))
                break;
        if (j < i)
            continue; /* already emitted with the first of its name */
        env_begin(e);
        env_put(e, "HTTP_", 5);
        for (k = 0; k < h->name_len; k++) {
            char c = (char)sp__http_lower((unsigned char)h->name[k]);

            c = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
            env_put(e, &c, 1);
        }
        env_put(e, "=", 1);
        /* RFC 3875 §4.1.18: several lines of one name join with ", " */
        for (j = i; j < req->num_headers; j++) {
            if (!same_name(&req->headers[j], h))
                continue;
            if (!first)
                env_put(e, ", ", 2);
            env_put(e, req->headers[j].value, req->headers[j].value_len);
            first = false;
        }
        env_end(e);
    }
}

int sp_http_cgi_env(const sp_http_request *req, const sp_http_action *act,
                    const sp_http_cgi_info *info, char **envp, size_t env_cap,
                    char *buf, size_t cap)
{
    struct env e = { .envp = envp, .env_cap = env_cap, .buf = buf, .cap = cap };
    const sp_http_header *h;

    env_sets(&e, "GATEWAY_INTERFACE", "CGI/1.1");
    env_sets(&e, "SERVER_PROTOCOL", req->minor_version ? "HTTP/1.1" : "HTTP/1.0");
    env_sets(&e, "SERVER_SOFTWARE", "spindle");
    env_sets(&e, "REQUEST_METHOD", sp_http_method_name(req->method));
    /* QUERY_STRING is set even when empty (§4.1.7), and stays encoded */
    env_set(&e, "QUERY_STRING", req->query ? req->query : "", req->query_len);
    env_set(&e, "REQUEST_URI", req->target, req->target_len);
    env_begin(&e);
    env_put(&e, "SCRIPT_NAME=/cgi-bin/", 21);
    env_put(&e, act->arg, act->arg_len);
    env_end(&e);
    if (act->info_len) /* PATH_INFO is decoded (§4.1.5); absent when empty */
        env_set(&e, "PATH_INFO", act->arg + act->info_off, act->info_len);
    if (info->content_length >= 0)
        env_setu(&e, "CONTENT_LENGTH", (uint64_t)info->content_length);
    if ((h = sp_http_find_header(req, "content-type")))
        env_set(&e, "CONTENT_TYPE", h->value, h->value_len);
    env_sets(&e, "REMOTE_ADDR", info->remote_addr ? info->remote_addr : "");
    env_setu(&e, "REMOTE_PORT", info->remote_port);
    if (info->server_name) {
        env_sets(&e, "SERVER_NAME", info->server_name);
    } else if ((h = sp_http_find_header(req, "host"))) {
        /* the host without its port; "[v6]:port" keeps its brackets */
        size_t n = h->value_len;
        const char *close = memchr(h->value, ']', n);
        const char *colon = memchr(close ? close : h->value, ':',
                                   n - (size_t)((close ? close : h->value) - h->value));

        env_set(&e, "SERVER_NAME", h->value,
                colon ? (size_t)(colon - h->value) : n);
    } else {
        env_sets(&e, "SERVER_NAME", "localhost");
    }
    env_setu(&e, "SERVER_PORT", info->server_port);
    env_headers(&e, req);
    if (e.overflow || e.n >= env_cap)
        return -ENOBUFS;
    envp[e.n] = NULL;
    return (int)e.n;
}

/* ---- output (RFC 3875 §6) ---- */

void sp_http_cgi_reply_init(sp_http_cgi_reply *c)
{
    memset(c, 0, sizeof *c);
}

/* One header line of the script's output: [s, e) without its line end. */
struct cgi_line {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Splits and checks a line; false if it is not a CGI header field. */
static bool split_line(const char *s, const char *e, struct cgi_line *l)
{
    const char *p = s;

    while (p < e && sp__http_is_tchar((unsigned char)*p))
        p++;
    if (p == s || p == e || *p != ':')
        return false; /* no name, or obs-fold, or whitespace before ':' */
    l->name = s;
    l->name_len = (size_t)(p - s);
    p++;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    l->value = p;
    l->value_len = (size_t)(e - p);
    for (; p < e; p++)
        if (!(sp__http_class[(unsigned char)*p] & SP__HTTP_VALUE))
            return false; /* a bare CR or another control byte */
    return true;
}

/* Iterates the header lines of [*cur, end): LF or CRLF line ends. */
static bool next_line(const char **cur, const char *end, const char **s,
                      const char **e)
{
    const char *p = *cur, *nl;

    if (p >= end)
        return false;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return false;
    *s = p;
    *e = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
    *cur = nl + 1;
    return true;
}

/* The verdict on a complete header section [out, out + n). */
static int cgi_check(sp_http_cgi_reply *c, const char *out, size_t n)
{
    const char *cur = out, *end = out + n, *s, *e;
    bool type = false, location = false, status = false, any = false;
    struct cgi_line l;

    c->status = 200;
    while (next_line(&cur, end, &s, &e) && e > s) {
        if (!split_line(s, e, &l))
            return 502;
        any = true;
        if (sp__http_ieq(l.name, l.name_len, "status")) {
            unsigned v = 0, i;

            /* Status: 3DIGIT [SP reason]; 1xx is not a final answer */
            if (status || l.value_len < 3 || (l.value_len > 3 && l.value[3] != ' '))
                return 502;
            for (i = 0; i < 3; i++) {
                unsigned d = (unsigned char)l.value[i] - '0';

                if (d > 9)
                    return 502;
                v = v * 10 + d;
            }
            if (v < 200 || v > 599)
                return 502;
            c->status = (int)v;
            status = true;
        } else if (sp__http_ieq(l.name, l.name_len, "content-type")) {
            type = true;
        } else if (sp__http_ieq(l.name, l.name_len, "location")) {
            location = l.value_len > 0;
        } else if (sp__http_ieq(l.name, l.name_len, "content-length")) {
            uint64_t v = 0;
            size_t i;

            if (c->has_length || l.value_len == 0)
                return 502;
            for (i = 0; i < l.value_len; i++) {
                unsigned d = (unsigned char)l.value[i] - '0';

                if (d > 9 || v > ((uint64_t)INT64_MAX - d) / 10)
                    return 502;
                v = v * 10 + d;
            }
            c->has_length = true;
            c->content_length = v;
        }
    }
    if (!any || (!type && !location))
        return 502; /* §6.2: a document needs a type, a redirect a Location */
    if (location && !status)
        c->status = 302; /* §6.2.3 client redirect; a local redirect
                          * (§6.2.2, a path) is sent to the client as well */
    return 0;
}

ssize_t sp_http_cgi_parse(sp_http_cgi_reply *c, const char *out, size_t len)
{
    struct sp__http_cgi_state *s = &c->priv_;
    const char *p, *end;

    if (s->result != 0)
        return s->result;
    if (len == 0)
        return SP_HTTP_AGAIN; /* and out may be NULL */
    end = out + len;
    if (s->base != (uintptr_t)out) {
        s->base = (uintptr_t)out;
        s->scan = 0;
    }
    /* `scan` is the start of the line not yet complete: each byte is looked
     * at once by memchr, and once more by cgi_check at the end. */
    p = out + s->scan;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_end;

        if (!nl)
            break;
        line_end = (size_t)(nl + 1 - out);
        if (line_end > SP_HTTP_CGI_HEAD_MAX)
            return s->result = -502;
        if (nl == p || (nl == p + 1 && p[0] == '\r')) {
            int rc = cgi_check(c, out, (size_t)(p - out));

            if (rc)
                return s->result = -rc;
            c->head_len = line_end;
            return s->result = (int)line_end;
        }
        p = nl + 1;
    }
    s->scan = (size_t)(p - out);
    if (len >= SP_HTTP_CGI_HEAD_MAX)
        return s->result = -502;
    return SP_HTTP_AGAIN;
}

/* Fields of the script that we never pass on: ours (Date, Server), the
 * framing we decide, hop-by-hop fields, and the CGI-only Status. */
static bool out_skip(const struct cgi_line *l)
{
    static const char *const SKIP[] = {
        "status", "date", "server", "content-length", "transfer-encoding",
        "connection", "keep-alive", "proxy-connection", "te", "trailer",
        "upgrade",
    };
    size_t i;

    for (i = 0; i < sizeof SKIP / sizeof SKIP[0]; i++)
        if (sp__http_ieq(l->name, l->name_len, SKIP[i]))
            return true;
    return false;
}

ssize_t sp_http_cgi_write_head(char *buf, size_t cap,
                               const sp_http_cgi_reply *c, const char *out,
                               const sp_http_request *req, bool keep_alive,
                               const char *date, sp_http_framing *framing)
{
    const char *cur = out, *end = out + c->head_len, *s, *e;
    bool keep = keep_alive && req->keep_alive;
    bool bodyless = c->status == 204 || c->status == 304;
    struct cgi_line l;
    sp_http_writer w;

    if (c->priv_.result <= 0)
        return -EINVAL; /* not a parsed reply */
    sp_http_writer_init(&w, buf, cap);
    sp_http_put_status(&w, c->status, date);
    while (next_line(&cur, end, &s, &e) && e > s) {
        if (!split_line(s, e, &l) || out_skip(&l))
            continue;
        sp__http_put(&w, l.name, l.name_len);
        sp__http_put(&w, ": ", 2);
        sp__http_put(&w, l.value, l.value_len);
        sp__http_put(&w, "\r\n", 2);
    }
    if (bodyless) {
        *framing = SP_HTTP_FRAME_NONE;
    } else if (c->has_length) {
        sp_http_put_content_length(&w, c->content_length);
        *framing = SP_HTTP_FRAME_LENGTH;
    } else if (req->minor_version == 1) {
        sp_http_put_chunked(&w);
        *framing = SP_HTTP_FRAME_CHUNKED;
    } else {
        keep = false; /* only the close can end the body */
        *framing = SP_HTTP_FRAME_CLOSE;
    }
    if (req->method == SP_HTTP_HEAD)
        *framing = SP_HTTP_FRAME_NONE; /* the head a GET would get, no body */
    sp_http_put_connection(&w, req->minor_version, keep);
    sp_http_put_end(&w);
    return sp_http_writer_finish(&w);
}
