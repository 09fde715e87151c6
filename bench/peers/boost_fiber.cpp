// peer_boost_fiber: Boost.Fiber 1.74 (libboost-fiber-dev), userland threads
// with a scheduler (round robin), mutexes and condition variables, over
// Boost.Context.
//
//   spawn        boost/fiber  ns to create a fiber, run it to completion and
//                             join it (its stack goes back to the pool)
//   idle_memory  boost/fiber  resident bytes per fiber, 100,000 alive and
//                             parked on a condition variable
#include "peer.h"

#include <boost/fiber/all.hpp>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <mutex>
#include <new>
#include <vector>

namespace bf = boost::fibers;

namespace {

constexpr long idle_n = 100000;

// ---- spawn ------------------------------------------------------------------

// pooled_fixedsize_stack, the allocator a Boost.Fiber user picks when fibers
// are made and ended at a high rate: it keeps freed stacks in a boost::pool,
// so after the warm-up a spawn never reaches malloc or mmap for its stack.
// Default size (stack_traits::default_size(), 128 KiB here).
struct spawn_state {
    bf::pooled_fixedsize_stack salloc;
};

double time_spawn(void *arg, long ops)
{
    auto *st = static_cast<spawn_state *>(arg);
    double t0 = bench_now_ns();
    for (long i = 0; i < ops; i++) {
        // launch::post (the default): the fiber is queued and runs when
        // join() suspends main; it then ends and main is resumed.
        bf::fiber f(std::allocator_arg, st->salloc, [] {});
        f.join();
    }
    return bench_now_ns() - t0;
}

// ---- idle_memory -------------------------------------------------------------

struct parking {
    bf::mutex mtx;
    bf::condition_variable cv;
    bool released = false;
    long parked = 0;
};

void park(parking *pk)
{
    std::unique_lock<bf::mutex> lk(pk->mtx);
    pk->parked++;
    pk->cv.wait(lk, [pk] { return pk->released; });
}

// Makes `count` fibers into fibers[0..count), lets them all run up to their
// wait, and returns when every one is parked.
template <class Alloc>
void park_all(parking &pk, std::vector<bf::fiber> &fibers, long count, Alloc &salloc)
{
    for (long i = 0; i < count; i++)
        fibers[static_cast<size_t>(i)] = bf::fiber(std::allocator_arg, salloc, park, &pk);
    // Round robin puts main behind the queued fibers, so one yield usually
    // does; the loop does not rely on it.
    while (pk.parked < count)
        boost::this_fiber::yield();
}

void release_all(parking &pk, std::vector<bf::fiber> &fibers)
{
    {
        std::unique_lock<bf::mutex> lk(pk.mtx);
        pk.released = true;
    }
    pk.cv.notify_all();
    for (auto &f : fibers)
        if (f.joinable())
            f.join();
}

// Runs in a fresh child (peer_memory). One fiber is made, parked and
// released first, so that Boost.Fiber's thread-local scheduler, its main and
// dispatcher contexts are made before the baseline.
//
// The allocator: fixedsize_stack, Boost.Fiber's default (a malloc'd stack),
// at 16 KiB instead of its default 128 KiB. Only touched pages count toward
// RSS, the top of the stack where Boost.Fiber places the fiber's context
// object and the frames of the wait, and those are the same: both sizes
// measured 9,215-9,217 bytes a fiber here. The big stacks only cost time (a
// fresh mmap each, spread over 13 GB of address space: 3.2 s against 0.9 s
// for one run here) and page tables, which RSS does not show.
// protected_fixedsize_stack cannot be used at this count: its guard page
// splits every stack into its own two mappings, 100,000 of them exceed
// vm.max_map_count (65,530 by default), and its mprotect fails (an assertion
// in the header; without one, stacks past the limit get no guard page).
std::size_t idle_stack_size()
{
    return std::max<std::size_t>(16 * 1024, bf::fixedsize_stack::traits_type::minimum_size());
}

long memory_body(void *, long n, char *why, size_t whylen)
{
    bf::fixedsize_stack salloc(idle_stack_size());
    std::vector<bf::fiber> fibers;
    parking pk;
    long before = 0, after = 0;
    try {
        // Made (and so touched) before the baseline: the handles are ours.
        fibers.resize(static_cast<size_t>(n));
        {
            parking warm;
            std::vector<bf::fiber> one(1);
            park_all(warm, one, 1, salloc);
            release_all(warm, one);
        }
        before = bench_rss_bytes();
        park_all(pk, fibers, n, salloc);
        after = bench_rss_bytes();
    } catch (const std::exception &e) {
        snprintf(why, whylen, "%s", e.what());
        after = -1;
    }
    // Also after a failure: a fiber destroyed while joinable would terminate
    // the process, and one that has not run yet sees `released` at once.
    release_all(pk, fibers);
    return after < 0 ? -1 : after - before;
}

} // namespace

int main(int argc, char **argv)
{
    const char *only = peer_parse_args(argc, argv);

    // First: each run forks, and a child is best made from a process whose
    // fiber scheduler has not run yet.
    if (peer_wants(only, "idle_memory"))
        peer_memory("idle_memory", "boost/fiber", memory_body, nullptr, idle_n);

    if (peer_wants(only, "spawn")) {
        try {
            spawn_state st;
            peer_time("spawn", "boost/fiber", time_spawn, &st);
        } catch (const std::exception &e) {
            bench_skip_write(stdout, "spawn", "boost/fiber", e.what());
        }
    }
    return 0;
}
