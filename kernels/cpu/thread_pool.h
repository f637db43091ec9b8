#pragma once
// A persistent team: N-1 worker threads plus the caller as thread 0. A
// decode step runs ~5 parallel steps per layer; OpenMP's fork/join per step
// costs more than the arithmetic of the small ones. Here a dispatch is one
// atomic increment (plus a futex wake when a worker went to sleep) and the
// join is a counter, with no allocation. Workers spin briefly after each
// step, since the next one usually follows within microseconds, then sleep.
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace mnemo::kernels::cpu {

class ThreadPool {
 public:
  using Fn = void (*)(void* ctx, int thread, int threads);

  // `threads` counts the caller: threads - 1 workers are started.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  // Calls fn(ctx, t, threads()) once for each t, t = 0 on the caller, and
  // returns when all have returned. Not reentrant: a call from inside fn (on
  // any thread of this team) runs fn(ctx, 0, 1) serially on that thread. An
  // exception thrown by fn on any thread is rethrown here (the first one).
  void run(Fn fn, void* ctx);

  // A step whose fn hands its work out dynamically (an atomic counter), so
  // that any subset of the threads, the caller among them, gets it all done:
  // it ends when the caller's fn has returned and every worker that joined
  // has; a worker that had not joined by then skips it. A worker slow to
  // wake, or descheduled on a busy machine, then never holds the step up.
  void run_shared(Fn fn, void* ctx);

  // True on a pool's worker threads and on a caller while it runs its share.
  static bool in_team();

  // While held, idle workers (and a caller waiting for them) keep polling
  // between steps, yielding the core to any other runnable thread, instead
  // of sleeping after spin_ns(): a forward pass's steps come every few
  // microseconds, with serial work between them, and a wake-up from the futex
  // costs tens of microseconds. A pool that outnumbers the CPUs never holds.
  // Bounded: a worker held for kHoldMaxNs without a step sleeps anyway; and
  // once a thread polling here finds its core taken by another thread (a
  // busy machine), the team stops polling for kContendedBackoffNs.
  // Off unless MNEMO_POOL_HOLD=1: on the shared 2-core machines, 2-thread
  // decode measured no better with it (123M, 10 interleaved rounds at load
  // 3: median 1.02x, best run 135 tok/s against 231 without), and on a busy
  // machine worse (0.82-0.87x at load 6), since the polling thread spends
  // the CPU share the working threads need. Dynamic steps (run_shared) cover
  // the late wake-up it was meant to hide: the caller takes the sleeper's share.
  void hold(bool on) { hold_.store(on && spin_ > 0 && hold_allowed(), std::memory_order_relaxed); }
  static bool hold_allowed();
  // Overrides MNEMO_POOL_HOLD for the process (tests, benches).
  static void allow_hold(bool on);
  static constexpr int64_t kHoldMaxNs = 2'000'000;
  static constexpr int64_t kContendedRoundNs = 20'000;
  static constexpr int64_t kContendedBackoffNs = 200'000'000;

  // How long an idle worker (and a waiting caller) spins before sleeping.
  // MNEMO_POOL_SPIN_US overrides the default; read once per process. A team
  // larger than the CPUs this process may use does not spin.
  static int64_t spin_ns();

 private:
  void start(Fn fn, void* ctx, bool shared);
  void rethrow_kept();
  void close_and_wait();
  void worker(int id);
  void finish_one();
  void wait_workers();
  void keep_exception();
  template <class Done>
  bool poll_while_held(Done done);

  const int threads_;
  // spin_ns(), or 0 when the team outnumbers the CPUs: a spinning thread
  // would hold the core that a thread the step waits for needs.
  const int64_t spin_;
  // Each on its own cache line: workers poll generation_, the caller polls
  // pending_, and neither should invalidate the other's line.
  alignas(64) std::atomic<uint32_t> generation_{0};  // futex word: bumped per dispatch
  std::atomic<int32_t> sleepers_{0};                // workers asleep (or about to) on generation_
  std::atomic<bool> hold_{false};                    // see hold(): polled beside generation_
  std::atomic<int64_t> contended_until_{0};          // steady-clock ns: no polling before
  alignas(64) std::atomic<uint32_t> pending_{0};     // futex word: workers not yet done with this step
  std::atomic<int32_t> caller_sleeping_{0};
  // The step's membership, for run_shared: generation << 32, then kClosed
  // (the caller is done: no one joins any more), kShared, and the count of
  // workers inside fn. Its low half is the caller's futex word.
  alignas(64) std::atomic<uint64_t> join_{0};
  static constexpr uint32_t kClosed = 1u << 31, kShared = 1u << 30, kActive = kShared - 1;
  alignas(64) Fn fn_ = nullptr;  // the step: written before generation_ is bumped
  void* ctx_ = nullptr;
  bool stop_ = false;
  std::mutex error_mu_;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

}  // namespace mnemo::kernels::cpu
