/* Helpers for the sync tests: checks that say what was expected.
 * Coroutines never call them (a cmocka failure longjmps to the test, on the
 * root's stack): they record what they saw, and the test checks it. */
#ifndef SP_SYNC_TEST_H
#define SP_SYNC_TEST_H
#include "sp_test.h"

#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include <spindle/sync.h>

/* got == want, or fail naming what was compared. */
#define CHECK_EQ(got, want, ...)                                                   \
    do {                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                   \
        if (g_ != w_) {                                                            \
            char m_[1024];                                                          \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                  \
            fail_msg("%s: expected %lld, got %lld", m_, w_, g_);                   \
        }                                                                          \
    } while (0)

/* A call that must fail with -1 and errno err. */
#define CHECK_FAILS(call, err, ...)                                                \
    do {                                                                           \
        errno = 0;                                                                 \
        long long r_ = (long long)(call);                                          \
        int e_ = errno;                                                            \
        if (r_ != -1 || e_ != (err)) {                                             \
            char m_[1024];                                                          \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                  \
            fail_msg("%s: expected -1 with %s, got %lld with %s", m_,              \
                     strerror(err), r_, strerror(e_));                             \
        }                                                                          \
    } while (0)

/* A call that must succeed (return 0). */
#define CHECK_OK(call, ...)                                                        \
    do {                                                                           \
        errno = 0;                                                                 \
        long long r_ = (long long)(call);                                          \
        if (r_ != 0) {                                                             \
            int e_ = errno;                                                        \
            char m_[1024];                                                          \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                  \
            fail_msg("%s: expected 0, got %lld (%s)", m_, r_, strerror(e_));       \
        }                                                                          \
    } while (0)

#define CHECK_TRUE(cond, ...)                                                      \
    do {                                                                           \
        if (!(cond)) {                                                             \
            char m_[1024];                                                          \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                  \
            fail_msg("%s (expected %s)", m_, #cond);                               \
        }                                                                          \
    } while (0)

/* Runs every ready coroutine until none is: a few rounds of yields. */
static inline void run_ready(void)
{
    for (int i = 0; i < 8; i++)
        sp_yield();
}

#endif
