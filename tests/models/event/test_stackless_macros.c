/* The stackless coroutine macros (spindle/stackless.h): coroutines that
 * interleave through SP_SL_YIELD, wait on each other through SP_SL_AWAIT
 * (a bounded buffer), run a child with SP_SL_AWAIT_CALL (whose yield is the
 * parent's), end early with SP_SL_EXIT, stay finished, and start over after
 * SP_SL_INIT. */
#include "sp_test.h"

#include <spindle/stackless.h>
#include <stdbool.h>

/* ---- three coroutines taking turns ---- */

typedef struct stepper {
    sp_sl co;
    char name;
    int i; /* survives the yields: it lives in the struct */
    char *log;
    size_t *len;
} stepper;

static int stepper_run(stepper *s)
{
    SP_SL_BEGIN(&s->co);
    for (s->i = 0; s->i < 3; s->i++) {
        s->log[(*s->len)++] = s->name;
        s->log[(*s->len)++] = (char)('0' + s->i);
        SP_SL_YIELD(&s->co);
    }
    SP_SL_END(&s->co);
}

static void test_yield_interleaves(void **state)
{
    char log[64];
    size_t len = 0;
    stepper s[3];
    int done = 0, rounds = 0;

    for (int k = 0; k < 3; k++) {
        SP_SL_INIT(&s[k].co);
        s[k].name = (char)('a' + k);
        s[k].log = log;
        s[k].len = &len;
    }
    while (done < 3) {
        done = 0;
        for (int k = 0; k < 3; k++)
            done += stepper_run(&s[k]) == SP_SL_DONE;
        rounds++;
    }
    log[len] = '\0';
    assert_string_equal(log, "a0b0c0a1b1c1a2b2c2"); /* round-robin order */
    assert_int_equal(rounds, 4); /* three yields, then the ends */
    for (int k = 0; k < 3; k++)
        assert_true(SP_SL_FINISHED(&s[k].co));
}

/* ---- a producer and a consumer over a bounded buffer ---- */

#define CAP 3
#define ITEMS 20

typedef struct channel {
    int buf[CAP];
    size_t head, count;
    bool closed;
} channel;

typedef struct producer {
    sp_sl co;
    channel *ch;
    int next;
    int waits; /* how often it found the buffer full */
} producer;

typedef struct consumer {
    sp_sl co;
    channel *ch;
    int got[ITEMS];
    int n;
} consumer;

static int producer_run(producer *p)
{
    SP_SL_BEGIN(&p->co);
    for (p->next = 0; p->next < ITEMS; p->next++) {
        if (p->ch->count == CAP)
            p->waits++;
        SP_SL_AWAIT(&p->co, p->ch->count < CAP);
        p->ch->buf[(p->ch->head + p->ch->count++) % CAP] = p->next * 7;
    }
    p->ch->closed = true;
    SP_SL_END(&p->co);
}

static int consumer_run(consumer *c)
{
    SP_SL_BEGIN(&c->co);
    for (;;) {
        SP_SL_AWAIT(&c->co, c->ch->count > 0 || c->ch->closed);
        if (c->ch->count == 0)
            SP_SL_EXIT(&c->co); /* closed and drained */
        c->got[c->n++] = c->ch->buf[c->ch->head];
        c->ch->head = (c->ch->head + 1) % CAP;
        c->ch->count--;
        if (c->n % 2 == 0)
            SP_SL_YIELD(&c->co); /* take two, then let the producer run */
    }
    SP_SL_END(&c->co);
}

static void test_await_bounded_buffer(void **state)
{
    channel ch = {{0}, 0, 0, false};
    producer p = {.ch = &ch};
    consumer c = {.ch = &ch};
    int rp = SP_SL_WAITING, rc = SP_SL_WAITING, turns = 0;

    SP_SL_INIT(&p.co);
    SP_SL_INIT(&c.co);
    /* the producer first: it fills the buffer and must wait */
    while (rp != SP_SL_DONE || rc != SP_SL_DONE) {
        rp = producer_run(&p);
        rc = consumer_run(&c);
        assert_true(++turns < 1000);
    }
    assert_int_equal(c.n, ITEMS);
    for (int i = 0; i < ITEMS; i++)
        assert_int_equal(c.got[i], i * 7); /* in order, none lost */
    assert_true(p.waits > 0); /* it did suspend on a full buffer */
    /* finished coroutines stay finished and run nothing */
    assert_int_equal(producer_run(&p), SP_SL_DONE);
    assert_int_equal(consumer_run(&c), SP_SL_DONE);
    assert_int_equal(c.n, ITEMS);
}

/* ---- a child coroutine ---- */

typedef struct parent {
    sp_sl co, child;
    bool flag;
    int child_steps, parent_steps, result;
} parent;

static int child_run(parent *p)
{
    SP_SL_BEGIN(&p->child);
    p->child_steps++;
    SP_SL_AWAIT(&p->child, p->flag);
    p->child_steps++;
    p->result = 42;
    SP_SL_END(&p->child);
}

static int parent_run(parent *p)
{
    SP_SL_BEGIN(&p->co);
    p->parent_steps++;
    SP_SL_AWAIT_CALL(&p->co, &p->child, child_run(p));
    p->parent_steps++;
    /* a second call starts the child afresh */
    p->flag = false;
    SP_SL_AWAIT_CALL(&p->co, &p->child, child_run(p));
    p->parent_steps++;
    SP_SL_END(&p->co);
}

static void test_await_call_runs_a_child(void **state)
{
    parent p = {.flag = false};

    SP_SL_INIT(&p.co);
    assert_int_equal(parent_run(&p), SP_SL_WAITING);
    assert_int_equal(parent_run(&p), SP_SL_WAITING); /* still waiting */
    assert_int_equal(p.parent_steps, 1);
    assert_int_equal(p.child_steps, 1); /* the child did not restart */
    p.flag = true;
    assert_int_equal(parent_run(&p), SP_SL_WAITING); /* into the second call */
    assert_int_equal(p.result, 42);
    assert_int_equal(p.parent_steps, 2);
    assert_int_equal(p.child_steps, 3); /* ended, then began again */
    p.flag = true;
    assert_int_equal(parent_run(&p), SP_SL_DONE);
    assert_int_equal(p.parent_steps, 3);
    assert_int_equal(p.child_steps, 4);
}

/* ---- a child's yield suspends its parent as yielded ---- */

typedef struct yparent {
    sp_sl co, child;
    int child_turns;
} yparent;

static int ychild_run(yparent *p)
{
    SP_SL_BEGIN(&p->child);
    for (p->child_turns = 0; p->child_turns < 2; p->child_turns++)
        SP_SL_YIELD(&p->child);
    SP_SL_END(&p->child);
}

static int yparent_run(yparent *p)
{
    SP_SL_BEGIN(&p->co);
    SP_SL_AWAIT_CALL(&p->co, &p->child, ychild_run(p));
    SP_SL_END(&p->co);
}

static void test_child_yield_propagates(void **state)
{
    yparent p;

    SP_SL_INIT(&p.co);
    assert_int_equal(yparent_run(&p), SP_SL_YIELDED); /* runnable, not waiting */
    assert_int_equal(yparent_run(&p), SP_SL_YIELDED);
    assert_int_equal(yparent_run(&p), SP_SL_DONE);
    assert_int_equal(p.child_turns, 2);
}

/* ---- a condition already true does not suspend; INIT restarts ---- */

typedef struct counter {
    sp_sl co;
    int runs;
} counter;

static int counter_run(counter *c)
{
    SP_SL_BEGIN(&c->co);
    SP_SL_AWAIT(&c->co, true);
    c->runs++;
    SP_SL_END(&c->co);
}

static void test_true_condition_and_restart(void **state)
{
    counter c = {.runs = 0};

    SP_SL_INIT(&c.co);
    assert_int_equal(counter_run(&c), SP_SL_DONE); /* straight through */
    assert_int_equal(counter_run(&c), SP_SL_DONE);
    assert_int_equal(c.runs, 1);
    SP_SL_INIT(&c.co);
    assert_false(SP_SL_FINISHED(&c.co));
    assert_int_equal(counter_run(&c), SP_SL_DONE);
    assert_int_equal(c.runs, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yield_interleaves),
        cmocka_unit_test(test_await_bounded_buffer),
        cmocka_unit_test(test_await_call_runs_a_child),
        cmocka_unit_test(test_child_yield_propagates),
        cmocka_unit_test(test_true_condition_and_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
