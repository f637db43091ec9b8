#pragma once
// The one way kernels run work on several threads. Every parallel step of a
// forward pass goes through here, so the thread team behind it can be
// replaced without touching the kernels: a persistent pool (thread_pool.h)
// that wakes parked workers instead of forking a team per operation.
#include <cstdint>
#include <algorithm>
#include <type_traits>
#include <utility>

namespace mnemo::kernels::cpu {

// Threads a parallel step uses on the calling thread (>= 1). Per thread: a
// thread that never set it gets MNEMO_THREADS, else OMP_NUM_THREADS, else
// the CPUs it may run on.
int num_threads();
// Sets it for the calling thread and the steps it starts.
void set_num_threads(int n);

namespace detail {
using TeamFn = void (*)(void* ctx, int thread, int threads);
void run_team(TeamFn fn, void* ctx, bool parallel);
// Replaces the pool for steps that use a team (threads > 1, not nested):
// benches install an OpenMP runner to compare the two on the same kernels.
// nullptr restores the pool. Not for production code: process-wide.
using TeamRunner = void (*)(TeamFn fn, void* ctx, int threads);
void set_team_runner(TeamRunner r);
}  // namespace detail

// Calls fn(thread, threads) once on each thread of the team (thread 0 is the
// caller) and returns when all have returned. parallel == false runs
// fn(0, 1) on the caller: the way to skip the team for small work. A call
// from inside a team's step runs fn(0, 1) on the thread that makes it.
template <class F>
void run_on_team(F&& fn, bool parallel = true) {
  detail::run_team([](void* ctx, int t, int n) { (*static_cast<std::remove_reference_t<F>*>(ctx))(t, n); },
                   static_cast<void*>(&fn), parallel);
}

// Splits [0, count) into one contiguous slice per thread, multiples of
// `align` except the last, and calls fn(begin, end) for each non-empty one.
template <class F>
void parallel_for(int64_t count, F&& fn, bool parallel = true, int64_t align = 1) {
  if (count <= 0) return;
  run_on_team(
      [&](int t, int n) {
        const int64_t units = (count + align - 1) / align;
        const int64_t b = std::min(count, units * t / n * align), e = std::min(count, units * (t + 1) / n * align);
        if (b < e) fn(b, e);
      },
      parallel);
}

}  // namespace mnemo::kernels::cpu
