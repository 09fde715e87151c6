// peer_boost_context: Boost.Context 1.74 (libboost-context-dev), the
// hand-written-assembly switch most C++ coroutine libraries sit on.
//
//   switch  boost/fcontext  ns per one-way switch: jump_fcontext ping-pong
//                           between main and one context (2 jumps a trip)
//   switch  boost/fiber     the same with boost::context::fiber::resume,
//                           the callcc-style API over fcontext (what Boost
//                           calls a fiber; not Boost.Fiber's scheduled one)
//
//   switch  boost/fcontext-fpflags  the fcontext ping-pong after main has
//                           raised an FP exception flag (an inexact division)
//                           and the partner has not
//
// The rows are direct switches with no scheduler: the figure to put beside a
// coroutine library's own raw switch. Debian's 1.74 jump_fcontext also saves
// and reloads the whole MXCSR and the x87 control word on every jump and is
// reached through the PLT of libboost_context.so: both part of what these
// rows cost. Reloading MXCSR is cheap when the value does not change and
// costs tens of nanoseconds when it does, and the whole register includes
// the sticky exception flags: two contexts whose flags differ swap values on
// every jump, which is what the -fpflags row measures. The other rows clear
// the flags before each context is made and before each timed loop, so both
// sides hold the same MXCSR (the harness's own floating point would
// otherwise raise inexact in main only).
#include "peer.h"

#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <cfenv>
#include <exception>
#include <utility>

namespace ctx = boost::context;
namespace fc = boost::context::detail;

namespace {

// ---- fcontext: the raw jump ----------------------------------------------

// The partner answers every jump with a jump back, passing the stop request
// through transfer_t::data; its last jump back to main never returns, so its
// stack can simply be freed afterwards.
void fcontext_partner(fc::transfer_t t)
{
    while (t.data == nullptr)
        t = fc::jump_fcontext(t.fctx, nullptr);
    fc::jump_fcontext(t.fctx, nullptr);
}

struct fcontext_state {
    fc::fcontext_t partner;
    bool raise_in_main;
};

double time_fcontext(void *arg, long ops)
{
    auto *st = static_cast<fcontext_state *>(arg);
    fc::fcontext_t partner = st->partner;
    long trips = ops / 2;
    std::feclearexcept(FE_ALL_EXCEPT);
    if (st->raise_in_main)
        bench_raise_inexact(); // in main only
    double t0 = bench_now_ns();
    for (long i = 0; i < trips; i++)
        partner = fc::jump_fcontext(partner, nullptr).fctx;
    double t1 = bench_now_ns();
    st->partner = partner;
    return t1 - t0;
}

void bench_fcontext(const char *impl, bool raise_in_main)
{
    // A guard page below the stack, as a careful user of the raw API would
    // have; it costs nothing per switch.
    ctx::protected_fixedsize_stack salloc;
    ctx::stack_context sc = salloc.allocate();
    std::feclearexcept(FE_ALL_EXCEPT);
    fcontext_state st{fc::make_fcontext(sc.sp, sc.size, fcontext_partner), raise_in_main};
    // The first jump starts the partner, which jumps straight back.
    st.partner = fc::jump_fcontext(st.partner, nullptr).fctx;
    peer_time("switch", impl, time_fcontext, &st);
    static int stop;
    fc::jump_fcontext(st.partner, &stop);
    salloc.deallocate(sc);
}

// ---- boost::context::fiber: the callcc-style API -----------------------

struct fiber_state {
    ctx::fiber partner;
    bool stop = false;
};

double time_fiber(void *arg, long ops)
{
    auto *st = static_cast<fiber_state *>(arg);
    long trips = ops / 2;
    std::feclearexcept(FE_ALL_EXCEPT);
    double t0 = bench_now_ns();
    for (long i = 0; i < trips; i++)
        st->partner = std::move(st->partner).resume();
    return bench_now_ns() - t0;
}

void bench_fiber()
{
    fiber_state st;
    std::feclearexcept(FE_ALL_EXCEPT);
    // fixedsize_stack: the default allocator of boost::context::fiber.
    st.partner = ctx::fiber(std::allocator_arg, ctx::fixedsize_stack(),
                            [&st](ctx::fiber &&main) {
                                while (!st.stop)
                                    main = std::move(main).resume();
                                return std::move(main);
                            });
    peer_time("switch", "boost/fiber", time_fiber, &st);
    // Let the partner return, which unwinds it and frees its stack.
    st.stop = true;
    st.partner = std::move(st.partner).resume();
}

} // namespace

int main(int argc, char **argv)
{
    const char *only = peer_parse_args(argc, argv);
    if (!peer_wants(only, "switch"))
        return 0;
    try {
        bench_fcontext("boost/fcontext", false);
        bench_fcontext("boost/fcontext-fpflags", true);
    } catch (const std::exception &e) {
        bench_skip_write(stdout, "switch", "boost/fcontext", e.what());
    }
    try {
        bench_fiber();
    } catch (const std::exception &e) {
        bench_skip_write(stdout, "switch", "boost/fiber", e.what());
    }
    return 0;
}
