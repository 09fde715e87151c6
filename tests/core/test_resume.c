/* The asymmetric pair: a generator driven by sp_resume/sp_suspend. */
#include "sp_test.h"

static int gen_value;

static void *fib_gen(void *arg)
{
    int a = 0, b = 1, n = (int)PI(arg);
    for (int i = 0; i < n; i++) {
        gen_value = a;
        sp_suspend();
        int t = a + b;
        a = b;
        b = t;
    }
    return IP(n);
}

static void test_generator(void **state)
{
    sp_co_attr at = {.suspended = 1};
    sp_co *g = sp_spawn(fib_gen, IP(10), &at);
    static const int expect[] = {0, 1, 1, 2, 3, 5, 8, 13, 21, 34};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sp_resume(g), 0);
        assert_int_equal(gen_value, expect[i]);
    }
    assert_int_equal(sp_resume(g), 1); /* finished */
    void *r;
    assert_int_equal(sp_join(g, &r), 0);
    assert_int_equal(PI(r), 10);
}

static void test_suspend_outside_resume_fails(void **state)
{
    errno = 0;
    assert_int_equal(sp_suspend(), -1);
    assert_int_equal(errno, EINVAL);
}

static void *nested_inner(void *arg)
{
    for (int i = 0; i < 3; i++)
        sp_suspend();
    return NULL;
}

static void *nested_outer(void *arg)
{
    sp_co_attr at = {.suspended = 1};
    sp_co *in = sp_spawn(nested_inner, NULL, &at);
    int n = 0;
    while (sp_resume(in) == 0) {
        n++;
        sp_suspend(); /* back to our own resumer between inner steps */
    }
    sp_join(in, NULL);
    return IP(n);
}

static void test_nested_resumers(void **state)
{
    sp_co_attr at = {.suspended = 1};
    sp_co *out = sp_spawn(nested_outer, NULL, &at);
    int steps = 0;
    while (sp_resume(out) == 0)
        steps++;
    void *r;
    sp_join(out, &r);
    assert_int_equal(PI(r), 3);
    assert_int_equal(steps, 3);
}

static void *yields_while_resumed(void *arg)
{
    int *ran = arg;
    sp_yield(); /* others run; the resumer stays parked */
    (*ran)++;
    return NULL;
}
static void *bystander(void *arg)
{
    int *ran = arg;
    (*ran) += 10;
    return NULL;
}

static void test_resume_of_ready_coroutine(void **state)
{
    int ran = 0;
    sp_co *by = sp_spawn(bystander, &ran, NULL);
    sp_co *co = sp_spawn(yields_while_resumed, &ran, NULL);
    assert_int_equal(sp_resume(co), 1);
    assert_int_equal(ran, 11);
    sp_join(co, NULL);
    sp_join(by, NULL);
}

/* A coroutine that another coroutine is joining is not resumed: its
 * joiner's place would be taken by the resumer, and when it ended it would
 * wake the resumer alone (the joiner would wait forever). */
static void *joins(void *arg)
{
    return IP(sp_join(arg, NULL) == 0 ? 1 : -errno);
}

static void test_resume_of_joined_coroutine_is_busy(void **state)
{
    sp_co_attr at = {.suspended = 1};
    sp_co *g = sp_spawn(fib_gen, IP(3), &at);
    assert_int_equal(sp_resume(g), 0); /* suspended inside, value 0 */
    sp_co *j = sp_spawn(joins, g, NULL);
    sp_yield(); /* j parks in its join */
    assert_int_equal(sp_resume(g), -1);
    assert_int_equal(errno, EBUSY);
    /* Once the join is given up, the generator can be driven to its end. */
    sp_cancel(j);
    void *r;
    assert_int_equal(sp_join(j, &r), 0);
    assert_int_equal(PI(r), -ECANCELED);
    assert_int_equal(sp_resume(g), 0);
    assert_int_equal(sp_resume(g), 0);
    assert_int_equal(sp_resume(g), 1);
    assert_int_equal(sp_join(g, &r), 0);
    assert_int_equal(PI(r), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generator),
        cmocka_unit_test(test_suspend_outside_resume_fails),
        cmocka_unit_test(test_nested_resumers),
        cmocka_unit_test(test_resume_of_ready_coroutine),
        cmocka_unit_test(test_resume_of_joined_coroutine_is_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
