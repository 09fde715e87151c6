/* The request corpus shared by the table, split and differential tests, and
 * the engine that plays the part of a connection feeding the parser. */
#ifndef SP_TEST_HTTP_CORPUS_H
#define SP_TEST_HTTP_CORPUS_H

#include <stdbool.h>
#include <stddef.h>

#include "spindle/http.h"

/* A result that is neither a head nor an error: the bytes ran out. */
#define CORPUS_INCOMPLETE (-1)

#define CORPUS_MAX_HEADERS 128
#define CORPUS_BODY_MAX 4096

struct corpus_case {
    const char *name;
    const char *raw;
    size_t len;
    const sp_http_limits *limits; /* NULL: the defaults */
    const char *rule;             /* why this is the verdict */

    int status; /* 0: a request; an error status; or CORPUS_INCOMPLETE */
    /* checked when status == 0 */
    sp_http_method method;
    const char *target;
    const char *path;
    const char *query; /* NULL: no '?' */
    int minor;
    bool keep_alive;
    bool expect_continue;
    int num_headers;            /* -1: not checked */
    sp_http_body_kind body_kind;
    const char *body;           /* decoded body; NULL is "" */
    size_t consumed;            /* head + body; 0 means the whole input */
};

extern struct corpus_case corpus[];
extern size_t corpus_count;

/* Builds the generated cases (long lines, many headers); call once. */
void corpus_init(void);

struct msg_result {
    int status;
    sp_http_request req;
    sp_http_header headers[CORPUS_MAX_HEADERS];
    char body[CORPUS_BODY_MAX];
    size_t body_len;
    size_t head_len;
    size_t consumed;
};

/* Parses one message of buf[0, len) as a connection would that receives it
 * in pieces ending at cuts[0] < cuts[1] < ... < len: head first (the same
 * buffer, growing), then the body (each piece copied so that it ends just
 * before an unreadable page).  While a piece is parsed the bytes after it
 * are scribbled over (and poisoned under ASan), so peeking ahead shows. */
void msg_parse(const char *buf, size_t len, const size_t *cuts, size_t ncuts,
               const sp_http_limits *limits, struct msg_result *r);

/* Empty when equal, else what differs. */
void msg_diff(const struct msg_result *a, const struct msg_result *b,
              char *why, size_t cap);

/* Empty when the result is what the case expects, else what differs. */
void corpus_check(const struct corpus_case *c, const struct msg_result *r,
                  char *why, size_t cap);

/* A buffer whose end is followed by a PROT_NONE page. */
struct guard {
    char *map;
    size_t map_len, usable;
};
void guard_init(struct guard *g, size_t max);
/* Copies src[0, n) so that it ends at the guard; returns the copy. */
char *guard_place(struct guard *g, const char *src, size_t n);
void guard_free(struct guard *g);

#endif
