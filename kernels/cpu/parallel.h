#pragma once
// The one way kernels run work on several threads. Every parallel step of a
// forward pass goes through here, so the thread team behind it can be
// replaced without touching the kernels: a persistent pool (thread_pool.h)
// that wakes parked workers instead of forking a team per operation.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace mnemo::kernels::cpu {

// Threads a parallel step uses on the calling thread (>= 1). Per thread: a
// thread that never set it gets MNEMO_THREADS, else OMP_NUM_THREADS, else
// the CPUs it may run on.
int num_threads();
// Sets it for the calling thread and the steps it starts.
void set_num_threads(int n);

// Keeps the calling thread's team awake for a burst of parallel steps with
// short serial work between them (a forward pass): between steps its idle
// threads poll, yielding the core to anything else runnable, instead of
// sleeping, so each step starts without a futex wake-up (ThreadPool::hold).
// Nests; ends with the outermost burst. Opt-in (MNEMO_POOL_HOLD=1, see
// ThreadPool::hold); otherwise a burst changes nothing.
class TeamBurst {
 public:
  TeamBurst();
  ~TeamBurst();
  TeamBurst(const TeamBurst&) = delete;
  TeamBurst& operator=(const TeamBurst&) = delete;
};

namespace detail {
using TeamFn = void (*)(void* ctx, int thread, int threads);
// shared: the step hands out its work dynamically (run_on_team_dynamic).
void run_team(TeamFn fn, void* ctx, bool parallel, bool shared = false);
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

// run_on_team for a step whose fn hands out its work dynamically (an
// atomic counter), so that any subset of the team's threads, the caller
// always among them, gets all of it done: the step returns once the caller's
// fn has and every thread that joined has; a thread that had not joined by
// then skips the step. A worker slow to wake, or descheduled on a busy
// machine, never holds a step up: the others take its share.
// (ThreadPool::run_shared.) fn(thread, threads) must not split work by thread.
template <class F>
void run_on_team_dynamic(F&& fn, bool parallel = true) {
  detail::run_team([](void* ctx, int t, int n) { (*static_cast<std::remove_reference_t<F>*>(ctx))(t, n); },
                   static_cast<void*>(&fn), parallel, true);
}

// Calls fn(begin, end) for the chunks [b, min(count, b + chunk)) of
// [0, count), b a multiple of chunk, each taken by whichever thread of the
// team is free (run_on_team_dynamic).
template <class F>
void parallel_chunks(int64_t count, int64_t chunk, F&& fn, bool parallel = true) {
  if (count <= 0) return;
  std::atomic<int64_t> next{0};
  run_on_team_dynamic(
      [&](int, int) {
        for (int64_t b; (b = next.fetch_add(chunk, std::memory_order_relaxed)) < count;) fn(b, std::min(count, b + chunk));
      },
      parallel && count > chunk);
}

// Calls fn(unit) for each unit of [0, count) once. Each thread of the team
// starts on a contiguous slice of its own (equal shares: the streaming and
// locality of a static split, one uncontended compare-and-swap per unit);
// a thread done with its slice takes units from the back of the others'. A
// thread that never starts (run_on_team_dynamic) leaves its slice to them.
template <class F>
void parallel_units(int64_t count, F&& fn, bool parallel = true) {
  if (count <= 0) return;
  constexpr int kMaxSlices = 32;
  struct alignas(64) Slice {
    std::atomic<uint64_t> front_back;  // front | back << 32, units still to do: [front, back)
  };
  Slice slices[kMaxSlices];
  const int n = parallel ? std::min(num_threads(), kMaxSlices) : 1;
  if (n <= 1 || count >= (int64_t(1) << 31)) {
    for (int64_t u = 0; u < count; ++u) fn(u);
    return;
  }
  for (int t = 0; t < n; ++t)
    slices[t].front_back.store(uint64_t(count * t / n) | uint64_t(count * (t + 1) / n) << 32, std::memory_order_relaxed);
  run_on_team_dynamic([&](int t, int threads) {
    if (threads == 1) {  // nested, or a team of one: everything here
      for (int s = 0; s < n; ++s) {
        const uint64_t w = slices[s].front_back.load(std::memory_order_relaxed);
        for (uint64_t u = w & 0xffffffffu; u < w >> 32; ++u) fn(int64_t(u));
      }
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int s = (t + i) % n;
      std::atomic<uint64_t>& fb = slices[s].front_back;
      for (uint64_t w = fb.load(std::memory_order_relaxed);;) {
        const uint64_t front = w & 0xffffffffu, back = w >> 32;
        if (front >= back) break;
        // The owner takes from the front, the others from the back.
        const uint64_t next = i == 0 ? w + 1 : w - (uint64_t(1) << 32);
        if (fb.compare_exchange_weak(w, next, std::memory_order_relaxed)) {
          fn(int64_t(i == 0 ? front : back - 1));
          w = fb.load(std::memory_order_relaxed);
        }
      }
    }
  }, parallel);
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
