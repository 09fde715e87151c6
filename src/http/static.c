/* Static files: opening beneath a root, content types, the response head
 * (304, single ranges).
 *
 * sp_http_static_open() is the one function of the http layer that touches
 * the file system.  It blocks (a cold disk, an NFS root), so models call it
 * from a thread, the offload pool or io_uring, never from an event loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http_internal.h"

/* O_NONBLOCK so that a FIFO planted under the root cannot block the opener;
 * it is cleared again once the file is known to be regular, because
 * io_uring returns EAGAIN instead of waiting on O_NONBLOCK files. */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Keeps fd only if it is a regular file; fills *st. */
static int keep_regular(int fd, struct stat *st)
{
    int err, fl;

    if (fstat(fd, st) < 0)
        goto fail;
    if (!S_ISREG(st->st_mode)) {
        errno = S_ISDIR(st->st_mode) ? EISDIR : EACCES;
        goto fail;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        goto fail;
    return fd;
fail:
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

int sp__http_static_open_walk(int root_fd, const char *rel, struct stat *st)
{
    char name[NAME_MAX + 1];
    const char *p = rel;
    int dir = root_fd, fd, err;

    if (*p == '/') {
        errno = EXDEV; /* what openat2 says for an escape */
        return -1;
    }
    for (;;) {
        const char *s = p;
        size_t n;

        while (*p && *p != '/')
            p++;
        n = (size_t)(p - s);
        if (n == 0 || (n == 1 && s[0] == '.')) {
            if (*p == '\0') {
                /* "", "dir/" or "dir/.": a directory, never a file */
                err = s == rel && n == 0 ? ENOENT : EISDIR;
                goto fail;
            }
            p++;
            continue;
        }
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            err = EXDEV;
            goto fail;
        }
        if (n > NAME_MAX) {
            err = ENAMETOOLONG;
            goto fail;
        }
        memcpy(name, s, n);
        name[n] = '\0';
        if (*p == '\0') {
            /* O_NOFOLLOW: a symlink as the last component is ELOOP */
            fd = openat(dir, name, OPEN_FLAGS | O_NOFOLLOW);
            err = errno;
            if (dir != root_fd)
                close(dir);
            if (fd < 0) {
                errno = err;
                return -1;
            }
            return keep_regular(fd, st);
        }
        /* a symlinked directory fails: O_NOFOLLOW opens the link itself,
         * and O_DIRECTORY then refuses it with ENOTDIR, which we report as
         * ELOOP (like the last component) when it was a link */
        fd = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        err = errno;
        if (fd < 0 && err == ENOTDIR) {
            struct stat lst;

            if (fstatat(dir, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(lst.st_mode))
                err = ELOOP;
        }
        if (dir != root_fd)
            close(dir);
        if (fd < 0) {
            errno = err;
            return -1;
        }
        dir = fd;
        p++;
    }
fail:
    if (dir != root_fd)
        close(dir);
    errno = err;
    return -1;
}

int sp_http_static_open(int root_fd, const char *rel, struct stat *st)
{
    struct open_how how;
    long fd;

    memset(&how, 0, sizeof how);
    how.flags = OPEN_FLAGS;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    if (fd < 0 && errno == ENOSYS)
        return sp__http_static_open_walk(root_fd, rel, st);
    if (fd < 0)
        return -1;
    return keep_regular((int)fd, st);
}

int sp_http_static_errno_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
    case ELOOP:
    case EXDEV:
    case EISDIR:
        return 403;
    default:
        return 500;
    }
}

/* ---- content types ---- */

static const struct {
    const char *ext;
    const char *type;
} TYPES[] = {
    { "html", "text/html; charset=utf-8" },
    { "htm", "text/html; charset=utf-8" },
    { "css", "text/css; charset=utf-8" },
    { "js", "text/javascript; charset=utf-8" }, /* RFC 9239 */
    { "json", "application/json" },
    { "txt", "text/plain; charset=utf-8" },
    { "png", "image/png" },
    { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "gif", "image/gif" },
    { "svg", "image/svg+xml" },
    { "ico", "image/vnd.microsoft.icon" },
    { "wasm", "application/wasm" },
    { "pdf", "application/pdf" },
};

#define DEFAULT_TYPE "application/octet-stream"

const char *sp_http_content_type(const char *path, size_t len)
{
    size_t i = len, k;

    while (i > 0 && path[i - 1] != '.' && path[i - 1] != '/')
        i--;
    if (i == 0 || path[i - 1] != '.')
        return DEFAULT_TYPE;
    for (k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++)
        if (sp__http_ieq(path + i, len - i, TYPES[k].ext))
            return TYPES[k].type;
    return DEFAULT_TYPE;
}

/* ---- the response head ---- */

/* Parses decimal digits [p, e) into *v; false on junk, empty or overflow. */
static bool parse_u64(const char *p, const char *e, uint64_t *v)
{
    *v = 0;
    if (p == e)
        return false;
    for (; p < e; p++) {
        unsigned d = (unsigned char)*p - '0';

        if (d > 9 || *v > (UINT64_MAX - d) / 10)
            return false;
        *v = *v * 10 + d;
    }
    return true;
}

enum range_verdict { RANGE_IGNORE, RANGE_OK, RANGE_UNSATISFIABLE };

/* A single "bytes=" range against a file of `size` bytes (RFC 9110 §14).
 * Anything we do not serve (several ranges, other units, bad syntax) is
 * ignored, which the RFC allows: the answer is then the whole file. */
static enum range_verdict parse_range(const sp_http_header *h, uint64_t size,
                                      uint64_t *first, uint64_t *last)
{
    const char *p = h->value, *e = h->value + h->value_len, *dash;
    uint64_t a, b;

    if (h->value_len < 6 || !sp__http_ieq(p, 6, "bytes="))
        return RANGE_IGNORE;
    p += 6;
    if (memchr(p, ',', (size_t)(e - p)))
        return RANGE_IGNORE;
    dash = memchr(p, '-', (size_t)(e - p));
    if (!dash)
        return RANGE_IGNORE;
    if (dash == p) { /* suffix: the last b bytes */
        if (!parse_u64(dash + 1, e, &b))
            return RANGE_IGNORE;
        if (b == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return RANGE_OK;
    }
    if (!parse_u64(p, dash, &a))
        return RANGE_IGNORE;
    if (dash + 1 == e) {
        b = UINT64_MAX;
    } else if (!parse_u64(dash + 1, e, &b) || b < a) {
        return RANGE_IGNORE;
    }
    if (a >= size)
        return RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return RANGE_OK;
}

/* True when the file is not newer than If-Modified-Since (RFC 9110
 * §13.1.3), which is ignored beside If-None-Match or when not a date. */
static bool not_modified(const sp_http_request *req, int64_t mtime)
{
    const sp_http_header *h = sp_http_find_header(req, "if-modified-since");
    int64_t t;

    if (!h || sp_http_find_header(req, "if-none-match"))
        return false;
    if (sp_http_parse_date(h->value, h->value_len, &t) < 0)
        return false;
    return mtime <= t;
}

ssize_t sp_http_static_head(char *buf, size_t cap, const sp_http_request *req,
                            const char *path, size_t path_len,
                            const struct stat *st, bool keep_alive,
                            const char *date, sp_http_file_reply *out)
{
    sp_http_writer w;
    uint64_t size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
    uint64_t first = 0, last = 0;
    bool keep = keep_alive && req->keep_alive;
    bool head = req->method == SP_HTTP_HEAD;
    char lm[SP_HTTP_DATE_LEN + 1];
    enum range_verdict rv = RANGE_IGNORE;
    const sp_http_header *rh;
    const char *type;

    sp_http_format_date(lm, (int64_t)st->st_mtime);
    out->status = 200;
    out->offset = 0;
    out->length = size;
    if (not_modified(req, (int64_t)st->st_mtime)) {
        out->status = 304;
        out->length = 0;
    } else if (req->method == SP_HTTP_GET &&
               (rh = sp_http_find_header(req, "range")) &&
               !sp_http_find_header(req, "if-range")) {
        rv = parse_range(rh, size, &first, &last);
        if (rv == RANGE_OK) {
            out->status = 206;
            out->offset = first;
            out->length = last - first + 1;
        } else if (rv == RANGE_UNSATISFIABLE) {
            out->status = 416;
            out->length = 0;
        }
    }

    sp_http_writer_init(&w, buf, cap);
    sp_http_put_status(&w, out->status, date);
    if (out->status == 200 || out->status == 206) {
        type = sp_http_content_type(path, path_len);
        sp_http_put_header(&w, "Content-Type", type, strlen(type));
        sp_http_put_content_length(&w, out->length);
        if (out->status == 206) {
            sp__http_put(&w, "Content-Range: bytes ", 21);
            sp__http_put_u64(&w, first);
            sp__http_put(&w, "-", 1);
            sp__http_put_u64(&w, last);
            sp__http_put(&w, "/", 1);
            sp__http_put_u64(&w, size);
            sp__http_put(&w, "\r\n", 2);
        }
        sp_http_put_header(&w, "Accept-Ranges", "bytes", 5);
    } else if (out->status == 416) {
        sp__http_put(&w, "Content-Range: bytes */", 23);
        sp__http_put_u64(&w, size);
        sp__http_put(&w, "\r\n", 2);
        sp_http_put_content_length(&w, 0);
    }
    sp_http_put_header(&w, "Last-Modified", lm, SP_HTTP_DATE_LEN);
    sp_http_put_connection(&w, req->minor_version, keep);
    sp_http_put_end(&w);
    if (head)
        out->length = 0;
    return sp_http_writer_finish(&w);
}
