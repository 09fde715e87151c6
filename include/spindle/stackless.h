/* spindle/stackless.h: stackless coroutines (protothreads, Duff's device).
 *
 * A stackless coroutine is an ordinary function that returns whenever it
 * must wait and, called again, continues after the point where it left.
 * It owns no stack: its whole state is an sp_sl (one int, the resume point)
 * plus whatever the caller keeps beside it in its own struct.  Thousands cost
 * thousands of small structs, nothing more; a switch to one is a call.
 *
 *     typedef struct reader { sp_sl co; int fd; size_t got; char buf[512]; } reader;
 *
 *     static int reader_run(reader *r)
 *     {
 *         SP_SL_BEGIN(&r->co);
 *         while (r->got < sizeof r->buf) {
 *             SP_SL_AWAIT(&r->co, readable(r->fd));  // returns SP_SL_WAITING
 *             ssize_t n = read(r->fd, r->buf + r->got, sizeof r->buf - r->got);
 *             if (n <= 0)
 *                 SP_SL_EXIT(&r->co);
 *             r->got += (size_t)n;
 *         }
 *         SP_SL_END(&r->co);
 *     }
 *
 *     SP_SL_INIT(&r->co);
 *     while (reader_run(r) != SP_SL_DONE)
 *         wait_for_something();   // a scheduler calls it again on events
 *
 * THE CONSTRAINTS, all consequences of "the body is one switch statement and
 * a suspension is a return":
 *  - Local variables do not survive a suspension (SP_SL_AWAIT, SP_SL_YIELD,
 *    SP_SL_AWAIT_CALL): the function returned in between.  Whatever must
 *    outlive one lives in the caller's struct beside the sp_sl.  A local may
 *    be used between two suspension points (`n` above); the compiler does
 *    not warn when one is read across a suspension, so keep such locals in a
 *    block that holds no suspension.
 *  - No suspension inside a switch statement of your own: its case labels
 *    would capture ours.  `break` outside any loop or switch of your own
 *    leaves our switch (the coroutine then ends with SP_SL_DONE): use
 *    SP_SL_EXIT.
 *  - At most one suspension point per source line: __LINE__ numbers them
 *    (two on a line fail to compile with "duplicate case value").
 *  - The function returns int and has the shape SP_SL_BEGIN ... SP_SL_END;
 *    its own `return` statements must return one of the SP_SL_* results.
 */
#ifndef SPINDLE_STACKLESS_H
#define SPINDLE_STACKLESS_H

/* A stackless coroutine's state: where it resumes.  Caller-owned; embed it
 * in the struct that also holds the coroutine's long-lived variables. */
typedef struct sp_sl {
    int line; /* 0: not started; -1: finished; else the __LINE__ to resume at */
} sp_sl;

/* What a coroutine function returns. */
#define SP_SL_WAITING 0 /* suspended in SP_SL_AWAIT: call again when the
                         * condition may have become true */
#define SP_SL_YIELDED 1 /* suspended in SP_SL_YIELD: runnable, call again
                         * after the others had their turn */
#define SP_SL_DONE 2    /* finished (SP_SL_END or SP_SL_EXIT); further calls
                         * return SP_SL_DONE and run nothing */

#if defined(__has_attribute)
#if __has_attribute(fallthrough)
#define SP__SL_FALLTHROUGH __attribute__((fallthrough))
#endif
#endif
#ifndef SP__SL_FALLTHROUGH
#define SP__SL_FALLTHROUGH (void)0
#endif

/* Makes `co` start from the top at its next call (a fresh coroutine, or a
 * finished one to run again).  Never fails; no suspension. */
#define SP_SL_INIT(co) ((co)->line = 0)

/* True once the coroutine has finished (SP_SL_END or SP_SL_EXIT). */
#define SP_SL_FINISHED(co) ((co)->line == -1)

/* Opens the coroutine's body: the first statement of the function.  It
 * jumps to the point where the last call suspended (the top when `co` is
 * fresh).  Pair it with SP_SL_END in the same function. */
#define SP_SL_BEGIN(co) switch ((co)->line) { case 0:

/* Suspends until `cond` is true: evaluates it now and at every later call;
 * while false the function returns SP_SL_WAITING.  `cond` is evaluated
 * again after each resume, so it must read state that outlives the call
 * (the caller's struct), not locals. */
#define SP_SL_AWAIT(co, cond)                      \
    do {                                           \
        (co)->line = __LINE__;                     \
        SP__SL_FALLTHROUGH;                        \
    case __LINE__:                                 \
        if (!(cond))                               \
            return SP_SL_WAITING;                  \
    } while (0)

/* Suspends once: returns SP_SL_YIELDED, and the next call continues after
 * it.  For fairness: a coroutine that could go on lets others run. */
#define SP_SL_YIELD(co)                            \
    do {                                           \
        (co)->line = __LINE__;                     \
        return SP_SL_YIELDED;                      \
    case __LINE__:;                                \
    } while (0)

/* Runs a child coroutine to its end: `child` is its sp_sl (started fresh
 * here), `call` the expression that runs it one step (e.g. flush(c)).
 * While the child suspends, this coroutine returns what the child returned
 * (SP_SL_WAITING or SP_SL_YIELDED) and calls it again at its next call. */
#define SP_SL_AWAIT_CALL(co, child, call)          \
    do {                                           \
        SP_SL_INIT(child);                         \
        (co)->line = __LINE__;                     \
        SP__SL_FALLTHROUGH;                        \
    case __LINE__: {                               \
        int sp__sl_r = (call);                     \
        if (sp__sl_r != SP_SL_DONE)                \
            return sp__sl_r;                       \
    }                                              \
    } while (0)

/* Ends the coroutine now, from anywhere in its body: returns SP_SL_DONE,
 * and so will every later call (until SP_SL_INIT). */
#define SP_SL_EXIT(co)                             \
    do {                                           \
        (co)->line = -1;                           \
        return SP_SL_DONE;                         \
    } while (0)

/* Closes the body opened by SP_SL_BEGIN: the last statement of the
 * function.  Reaching it finishes the coroutine (returns SP_SL_DONE). */
#define SP_SL_END(co)                              \
    }                                              \
    (co)->line = -1;                               \
    return SP_SL_DONE

#endif /* SPINDLE_STACKLESS_H */
