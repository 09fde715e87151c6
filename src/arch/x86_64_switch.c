/* sp__asm_switch: the inline switch (ctx.h) as a function, for code that is
 * not built with -mno-red-zone or wants an ordinary call (the tests).  The
 * jump clobbers the callee-saved registers, so this function's prologue
 * saves them and its epilogue gives them back: to its caller it is an
 * ordinary function that returns, much later, with `transfer` of whoever
 * switched back. */
#include "arch/ctx.h"

__attribute__((visibility("hidden"), noinline)) void *
sp__asm_switch(void **save_sp, void *load_sp, void *transfer)
{
    return sp__asm_jump(save_sp, load_sp, transfer, 1);
}
