/* Every split of the input gives the same result (http-parser's scan test):
 * each corpus message parsed whole, byte by byte, at every single split
 * point, and in random pieces, always ending just before a PROT_NONE page,
 * with the bytes not yet "received" scribbled over (and poisoned under
 * ASan) so that a read past what was given crashes or changes the result. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_corpus.h"

/* Random piece sets per message: enough to mix 2-to-20-piece shapes. */
#define RANDOM_ROUNDS 64

static size_t cuts[1 << 16];

static bool same_as_whole(const struct corpus_case *c, char *buf,
                          const struct msg_result *whole, size_t ncuts,
                          const char *how)
{
    static struct msg_result r;
    char why[1024];

    msg_parse(buf, c->len, cuts, ncuts, c->limits, &r);
    msg_diff(whole, &r, why, sizeof why);
    if (why[0]) {
        print_error("case %s, %s (first cut %zu of %zu): whole vs split: %s\n",
                    c->name, how, ncuts ? cuts[0] : 0, ncuts, why);
        return false;
    }
    return true;
}

static void test_every_split(void **state)
{
    static struct msg_result whole;
    struct guard g;
    size_t i, k, failures = 0;
    unsigned seed = 12345;

    (void)state;
    corpus_init();
    guard_init(&g, 1 << 16);
    for (i = 0; i < corpus_count; i++) {
        const struct corpus_case *c = &corpus[i];
        char *buf = guard_place(&g, c->raw, c->len);
        char why[1024];
        size_t n = 0;
        int round;

        msg_parse(buf, c->len, NULL, 0, c->limits, &whole);
        corpus_check(c, &whole, why, sizeof why);
        if (why[0]) {
            print_error("case %s: the whole message is already wrong: %s\n", c->name, why);
            failures++;
            continue;
        }
        /* byte by byte */
        for (k = 1; k < c->len; k++)
            cuts[n++] = k;
        if (!same_as_whole(c, buf, &whole, n, "byte by byte"))
            failures++;
        /* every single split point */
        for (k = 1; k < c->len; k++) {
            cuts[0] = k;
            if (!same_as_whole(c, buf, &whole, 1, "one split")) {
                failures++;
                break;
            }
        }
        /* random pieces */
        for (round = 0; round < RANDOM_ROUNDS && c->len > 2; round++) {
            size_t at = 0;

            n = 0;
            for (;;) {
                seed = seed * 1103515245u + 12345u;
                at += 1 + (seed >> 8) % (c->len / 4 + 1);
                if (at >= c->len)
                    break;
                cuts[n++] = at;
            }
            if (!same_as_whole(c, buf, &whole, n, "random pieces")) {
                failures++;
                break;
            }
        }
    }
    guard_free(&g);
    if (failures)
        fail_msg("%zu split runs differed from the whole-message parse", failures);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
