/* The event models' lazy timer heap (src/models/evm.h): zero, huge and
 * repeated deadlines, firing order, never twice, and removal; then random
 * operations checked against a plain list of deadlines. */
#include "sp_test.h"

#include "models/evm.h"

#define N 64

/* Pops every timer due at `now` into out[]; returns how many. */
static size_t expire(sp__evm_heap *h, int64_t now, sp__evm_timer **out, size_t cap)
{
    sp__evm_timer *t;
    size_t n = 0;

    while ((t = sp__evm_timer_expired(h, now))) {
        assert_true(n < cap);
        out[n++] = t;
    }
    return n;
}

static void test_zero_huge_and_order(void **state)
{
    sp__evm_heap h = {0};
    sp__evm_timer t[4] = {{.deadline = -1}, {.deadline = -1}, {.deadline = -1},
                          {.deadline = -1}};
    sp__evm_timer *out[8];

    assert_int_equal(sp__evm_timer_next(&h), -1);
    sp__evm_timer_set(&h, &t[0], 300);
    sp__evm_timer_set(&h, &t[1], 0); /* zero: due at once */
    sp__evm_timer_set(&h, &t[2], INT64_MAX); /* huge: never in a test's time */
    sp__evm_timer_set(&h, &t[3], 200);
    assert_int_equal(sp__evm_timer_next(&h), 0);
    assert_int_equal(expire(&h, 0, out, 8), 1);
    assert_ptr_equal(out[0], &t[1]);
    assert_int_equal(expire(&h, 199, out, 8), 0); /* nothing early */
    assert_int_equal(expire(&h, 1000, out, 8), 2);
    assert_ptr_equal(out[0], &t[3]); /* earliest first */
    assert_ptr_equal(out[1], &t[0]);
    assert_int_equal(expire(&h, 1000000, out, 8), 0); /* never twice */
    assert_int_equal(t[0].deadline, -1);
    assert_int_equal(sp__evm_timer_next(&h), INT64_MAX);
    sp__evm_timer_remove(&h, &t[2]);
    assert_int_equal(sp__evm_timer_next(&h), -1);
    sp__evm_heap_free(&h);
}

static void test_moved_and_cleared(void **state)
{
    sp__evm_heap h = {0};
    sp__evm_timer a = {.deadline = -1}, b = {.deadline = -1};
    sp__evm_timer *out[4];

    sp__evm_timer_set(&h, &a, 100);
    sp__evm_timer_set(&h, &a, 500); /* later: stored, the entry stays at 100 */
    sp__evm_timer_set(&h, &b, 300);
    assert_int_equal(expire(&h, 100, out, 4), 0); /* the stale key is re-pushed */
    assert_int_equal(expire(&h, 300, out, 4), 1);
    assert_ptr_equal(out[0], &b);
    sp__evm_timer_set(&h, &a, 50); /* earlier: moves up now */
    assert_int_equal(sp__evm_timer_next(&h), 50);
    assert_int_equal(expire(&h, 60, out, 4), 1);
    assert_ptr_equal(out[0], &a);
    sp__evm_timer_set(&h, &a, 700);
    sp__evm_timer_set(&h, &a, -1); /* cleared: must not fire */
    assert_int_equal(expire(&h, 10000, out, 4), 0);
    assert_int_equal(h.n, 0); /* and its stale entry is gone */
    sp__evm_heap_free(&h);
}

static void test_random_against_a_list(void **state)
{
    sp__evm_heap h = {0};
    sp__evm_timer t[N];
    int64_t want[N]; /* the model: each timer's deadline, -1 none */
    sp__evm_timer *out[N];
    unsigned seed = 12345;
    int64_t now = 0;

    for (int i = 0; i < N; i++) {
        t[i] = (sp__evm_timer){.deadline = -1};
        want[i] = -1;
    }
    for (int step = 0; step < 20000; step++) {
        int i = (int)((seed = seed * 1103515245u + 12345u) >> 8) % N;
        unsigned op = (seed >> 20) % 8;

        if (op < 5) { /* set, at or after now */
            int64_t d = now + (int64_t)((seed >> 4) % 1000);

            sp__evm_timer_set(&h, &t[i], d);
            want[i] = d;
        } else if (op == 5) {
            sp__evm_timer_set(&h, &t[i], -1);
            want[i] = -1;
        } else if (op == 6) {
            sp__evm_timer_remove(&h, &t[i]);
            want[i] = -1;
        } else { /* time passes: exactly the due timers fire, in order */
            size_t n;
            int64_t last = -1;

            now += (int64_t)((seed >> 6) % 300);
            n = expire(&h, now, out, N);
            for (size_t k = 0; k < n; k++) {
                int j = (int)(out[k] - t);

                assert_true(want[j] >= 0 && want[j] <= now);
                assert_true(want[j] >= last);
                last = want[j];
                want[j] = -1;
            }
            for (int j = 0; j < N; j++)
                assert_true(want[j] < 0 || want[j] > now); /* none left due */
        }
        /* the next wake-up is never later than the earliest deadline */
        int64_t next = sp__evm_timer_next(&h), min = -1;

        for (int j = 0; j < N; j++)
            if (want[j] >= 0 && (min < 0 || want[j] < min))
                min = want[j];
        if (min >= 0)
            assert_true(next >= 0 && next <= min);
    }
    sp__evm_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_huge_and_order),
        cmocka_unit_test(test_moved_and_cleared),
        cmocka_unit_test(test_random_against_a_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
