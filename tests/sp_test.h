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

/* Runs fn in a forked child and collects its exit status and stderr. */
int sp_test_child(void (*fn)(void *), void *arg, int *status, char *err, size_t errlen);

#endif
