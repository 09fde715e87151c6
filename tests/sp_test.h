/* Common includes for the cmocka tests. */
#ifndef SP_TEST_H
#define SP_TEST_H
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>
#include <spindle.h>

#define IP(x) ((void *)(intptr_t)(x))
#define PI(x) ((intptr_t)(x))

/* 1 in a ThreadSanitizer build, which runs some ten times slower: stress
 * tests scale their counts down. */
#if defined(__SANITIZE_THREAD__)
#define SP_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SP_TEST_TSAN 1
#endif
#endif
#ifndef SP_TEST_TSAN
#define SP_TEST_TSAN 0
#endif

/* sp_run(fn, arg) with the environment's configuration and `workers`
 * workers; returns what sp_run does. */
int sp_test_run_workers(sp_co_fn fn, void *arg, void **result, int workers);

/* A loopback TCP connection: *server is accepted with sp_accept (the
 * runtime's), *plain a blocking socket the runtime never saw.  Returns the
 * listener (the caller closes it with sp_close), or -1. */
int sp_test_tcp_pair(int *server, int *plain);

/* Runs fn in a forked child and collects its exit status and stderr. */
int sp_test_child(void (*fn)(void *), void *arg, int *status, char *err, size_t errlen);

#endif
