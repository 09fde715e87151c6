/* The load generator's target: an http:// URL that must name loopback.
 *
 * This workplace allows traffic to this machine only, and a load generator
 * pointed at the wrong host is a denial-of-service tool; so the host must
 * be a numeric loopback address (or the word localhost, mapped here rather
 * than looked up: /etc/hosts could say anything), and nothing is resolved. */
#define _GNU_SOURCE
#include <spindle/load.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int parse_port(const char *p, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

int sp_load_target_parse(const char *url, sp_load_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (!url || !*url)
        return fail(err, errlen, "no URL given");
    if (strncasecmp(url, "https://", 8) == 0)
        return fail(err, errlen, "'%s': https is not supported (plain http:// only)", url);
    if (strncasecmp(url, "http://", 7) != 0)
        return fail(err, errlen, "'%s' is not an http:// URL", url);
    const char *h = url + 7;
    const char *pathp = h + strcspn(h, "/?#");
    const char *hend, *portp = NULL;
    char host[64];
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(pathp - h));
        if (!close)
            return fail(err, errlen, "'%s': unclosed '[' in the host", url);
        hend = close + 1;
        if (hend < pathp) {
            if (*hend != ':')
                return fail(err, errlen, "'%s': junk after the IPv6 address", url);
            portp = hend + 1;
        }
        size_t n = (size_t)(close - h - 1);
        if (n >= sizeof host)
            return fail(err, errlen, "'%s': host too long", url);
        memcpy(host, h + 1, n);
        host[n] = 0;
    } else {
        const char *colon = memchr(h, ':', (size_t)(pathp - h));
        hend = colon ? colon : pathp;
        if (colon)
            portp = colon + 1;
        size_t n = (size_t)(hend - h);
        if (n >= sizeof host)
            return fail(err, errlen, "'%s': host too long", url);
        memcpy(host, h, n);
        host[n] = 0;
    }
    if (!host[0])
        return fail(err, errlen, "'%s': no host", url);
    if (memchr(h, '@', (size_t)(pathp - h)))
        return fail(err, errlen, "'%s': user information in URLs is not supported", url);
    t->port = 80;
    if (portp && parse_port(portp, (size_t)(pathp - portp), &t->port) < 0)
        return fail(err, errlen, "'%s': the port must be a number from 1 to 65535", url);

    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0) {
        t->family = AF_INET;
        a4.s_addr = htonl(INADDR_LOOPBACK);
        memcpy(t->addr, &a4, 4);
    } else if (inet_pton(AF_INET, host, &a4) == 1) {
        if ((ntohl(a4.s_addr) >> 24) != 127)
            goto refuse;
        t->family = AF_INET;
        memcpy(t->addr, &a4, 4);
    } else if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6))
            goto refuse;
        t->family = AF_INET6;
        memcpy(t->addr, &a6, 16);
    } else {
        goto refuse;
    }
    /* The Host header as the URL wrote it, brackets and port included. */
    size_t hl = (size_t)(pathp - h);
    if (hl >= sizeof t->host)
        return fail(err, errlen, "'%s': host too long", url);
    memcpy(t->host, h, hl);
    t->host[hl] = 0;

    if (*pathp == '#')
        pathp = "";
    const char *frag = strchr(pathp, '#'); /* never sent (RFC 3986 §3.5) */
    size_t pl = frag ? (size_t)(frag - pathp) : strlen(pathp);
    int need_slash = pl == 0 || pathp[0] == '?';
    if (pl + (size_t)need_slash >= sizeof t->path)
        return fail(err, errlen, "'%s': path longer than %zu bytes", url, sizeof t->path - 1);
    for (size_t i = 0; i < pl; i++)
        if ((unsigned char)pathp[i] <= 0x20 || (unsigned char)pathp[i] >= 0x7f)
            return fail(err, errlen, "'%s': the path has a space or a control byte "
                        "(percent-encode it)", url);
    snprintf(t->path, sizeof t->path, "%s%.*s", need_slash ? "/" : "", (int)pl, pathp);
    return 0;

refuse:
    return fail(err, errlen, "'%s': refusing host '%s': spindle load only targets "
                "loopback (127.0.0.0/8, [::1] or localhost)", url, host);
}
