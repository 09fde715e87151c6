/* Shared by the files of src/http/ only; never installed. */
#ifndef SP_HTTP_INTERNAL_H
#define SP_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spindle/http.h"

/* Byte classes, one table so a scan loop costs one load per byte. */
enum {
    SP__HTTP_TCHAR = 1,   /* token (RFC 9110 §5.6.2) */
    SP__HTTP_TARGET = 2,  /* request-target byte: 0x21-0x7E but '#' */
    SP__HTTP_VALUE = 4,   /* field-value byte: HTAB, SP, VCHAR, obs-text */
};
extern const uint8_t sp__http_class[256];

static inline bool sp__http_is_tchar(unsigned char c)
{
    return sp__http_class[c] & SP__HTTP_TCHAR;
}

static inline unsigned char sp__http_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* ASCII case-insensitive equality of s[0, n) and the C string z. */
bool sp__http_ieq(const char *s, size_t n, const char *z);

/* Iterates a comma-separated list (RFC 9110 §5.6.1): returns the next
 * element with OWS trimmed, skipping empty ones; false at the end. */
bool sp__http_list_next(const char **cur, const char *end, const char **elem,
                        size_t *elem_len);

/* sp_http_put, inline: a response is a dozen small pieces, most of them
 * literals whose memcpy the compiler turns into a few moves once the
 * length is known here, instead of a call and a libc memcpy each. */
static inline void sp__http_put(sp_http_writer *w, const void *p, size_t n)
{
    if (__builtin_expect(n > w->cap - w->len, 0)) {
        w->overflow = true;
        return;
    }
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* Appends a decimal number. */
void sp__http_put_u64(sp_http_writer *w, uint64_t v);

/* The openat() walk that sp_http_static_open() falls back to; exposed so the
 * tests run it on kernels that do have openat2. */
int sp__http_static_open_walk(int root_fd, const char *rel, struct stat *st);

#endif
