/* Spawn, join, detach, exit, ids, names, and the errors of each. */
#include "sp_test.h"

static void *ret_arg(void *arg) { return arg; }

static void test_join_returns_result(void **state)
{
    sp_co *co = sp_spawn(ret_arg, IP(1234), NULL);
    assert_non_null(co);
    void *r = NULL;
    assert_int_equal(sp_join(co, &r), 0);
    assert_int_equal(PI(r), 1234);
}

/* Called through a volatile pointer so the compiler does not see the
 * recursion end in a noreturn call and call it infinite. */
static void (*volatile exit_fn)(void *) = sp_exit;
static void deep_exit(int depth)
{
    if (depth == 0)
        exit_fn(IP(77));
    else
        deep_exit(depth - 1);
}
static void *exits_deep(void *arg)
{
    deep_exit(20);
    return IP(-1);
}

static void test_exit_from_deep_call(void **state)
{
    void *r;
    assert_int_equal(sp_join(sp_spawn(exits_deep, NULL, NULL), &r), 0);
    assert_int_equal(PI(r), 77);
}

static void *self_info(void *arg)
{
    sp_co **out = arg;
    *out = sp_self();
    return IP(sp_co_id(sp_self()));
}

static void test_ids_names_self(void **state)
{
    sp_co *seen = NULL;
    sp_co_attr a = {.name = "worker-7"};
    sp_co *co = sp_spawn(self_info, &seen, &a);
    assert_string_equal(sp_co_name(co), "worker-7");
    uint64_t id = sp_co_id(co);
    assert_true(id > 0);
    void *r;
    sp_join(co, &r);
    assert_ptr_equal(seen, co);
    assert_int_equal((uint64_t)PI(r), id);
    assert_int_equal(sp_co_id(sp_self()), 0);
    assert_string_equal(sp_co_name(sp_self()), "main");
    /* Ids are never reused, even when objects are. */
    sp_co *c2 = sp_spawn(ret_arg, NULL, NULL);
    assert_true(sp_co_id(c2) > id);
    assert_string_equal(sp_co_name(c2), "");
    sp_join(c2, NULL);
}

static void test_join_errors(void **state)
{
    errno = 0;
    assert_int_equal(sp_join(sp_self(), NULL), -1);
    assert_int_equal(errno, EINVAL); /* the root cannot be joined */
    sp_co_attr d = {.detached = 1};
    sp_co *co = sp_spawn(ret_arg, NULL, &d);
    errno = 0;
    assert_int_equal(sp_join(co, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sp_detach(co), -1);
    sp_yield(); /* lets it end and release itself */
    assert_null(sp_spawn(NULL, NULL, NULL));
    assert_int_equal(errno, EINVAL);
    sp_co_attr bad = {.stack = (sp_stack_kind)99};
    assert_null(sp_spawn(ret_arg, NULL, &bad));
    assert_int_equal(errno, EINVAL);
}

static void *join_self(void *arg)
{
    errno = 0;
    int rc = sp_join(sp_self(), NULL);
    return IP(rc == -1 && errno == EDEADLK);
}

static void test_join_self_is_edeadlk(void **state)
{
    void *r;
    sp_join(sp_spawn(join_self, NULL, NULL), &r);
    assert_true(PI(r));
}

static int detached_ran;
static void *detached_fn(void *arg)
{
    sp_yield();
    detached_ran++;
    return NULL;
}

static void test_detach_releases(void **state)
{
    detached_ran = 0;
    for (int i = 0; i < 1000; i++) {
        sp_co *co = sp_spawn(detached_fn, NULL, NULL);
        assert_int_equal(sp_detach(co), 0);
    }
    while (detached_ran < 1000)
        sp_yield();
    assert_int_equal(detached_ran, 1000);
}

static void *join_other(void *arg)
{
    void *r;
    if (sp_join(arg, &r) != 0)
        return IP(-1);
    return IP(PI(r) + 1);
}

static void test_chain_of_joins(void **state)
{
    /* Each joins the previous one: joins park and wake in a chain. */
    sp_co *prev = sp_spawn(ret_arg, IP(0), NULL);
    for (int i = 0; i < 500; i++)
        prev = sp_spawn(join_other, prev, NULL);
    void *r;
    assert_int_equal(sp_join(prev, &r), 0);
    assert_int_equal(PI(r), 500);
}

static void *spawner(void *arg)
{
    int n = (int)PI(arg);
    if (n == 0)
        return IP(1);
    sp_co *a = sp_spawn(spawner, IP(n - 1), NULL);
    sp_co *b = sp_spawn(spawner, IP(n - 1), NULL);
    void *ra, *rb;
    sp_join(a, &ra);
    sp_join(b, &rb);
    return IP(PI(ra) + PI(rb));
}

static void test_tree_of_spawns(void **state)
{
    void *r;
    sp_join(sp_spawn(spawner, IP(12), NULL), &r);
    assert_int_equal(PI(r), 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_returns_result),
        cmocka_unit_test(test_exit_from_deep_call),
        cmocka_unit_test(test_ids_names_self),
        cmocka_unit_test(test_join_errors),
        cmocka_unit_test(test_join_self_is_edeadlk),
        cmocka_unit_test(test_detach_releases),
        cmocka_unit_test(test_chain_of_joins),
        cmocka_unit_test(test_tree_of_spawns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
