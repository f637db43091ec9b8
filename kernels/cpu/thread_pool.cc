#include "kernels/cpu/thread_pool.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>

namespace mnemo::kernels::cpu {
namespace {

thread_local bool t_in_team = false;

void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
  // Returns at once if the word no longer holds `expected` (no lost wake-up).
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>& word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

// Spins until done() or `limit` ns elapsed; true when done() came true.
template <class Done>
bool spin_until(Done done, int64_t limit) {
  if (done()) return true;
  if (limit <= 0) return false;
  const int64_t t0 = now_ns();
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      cpu_relax();
      if (done()) return true;
    }
    if (now_ns() - t0 > limit) return done();
  }
}

}  // namespace

int64_t ThreadPool::spin_ns() {
  // Short: enough for back-to-back steps and for a join whose threads end
  // together. On a shared, oversubscribed machine a spinning thread holds
  // the core the thread it waits for needs: 123M decode at 2 threads on 2
  // loaded cores ran at ~14 tok/s with 200 us of spin, ~3 with 2 ms, and
  // 40-100 with 0-5 us (OpenMP: ~20). A dedicated machine may want more.
  static const int64_t ns = [] {
    const char* s = std::getenv("MNEMO_POOL_SPIN_US");
    return s ? std::max<int64_t>(0, std::atoll(s)) * 1000 : int64_t(5'000);
  }();
  return ns;
}

bool ThreadPool::in_team() { return t_in_team; }

ThreadPool::ThreadPool(int threads)
    : threads_(threads < 1 ? 1 : threads), spin_(threads_ > usable_cpus() ? 0 : spin_ns()) {
  workers_.reserve(size_t(threads_ - 1));
  for (int id = 1; id < threads_; ++id) workers_.emplace_back([this, id] { worker(id); });
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  generation_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(generation_, INT_MAX);
  for (auto& w : workers_) w.join();
}

void ThreadPool::run(Fn fn, void* ctx) {
  if (threads_ == 1 || t_in_team) {
    fn(ctx, 0, 1);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  pending_.store(uint32_t(threads_ - 1), std::memory_order_relaxed);
  // seq_cst pairs with a worker's sleepers_ increment then generation_
  // re-check: either it sees the new generation or we see it asleep.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake(generation_, INT_MAX);
  t_in_team = true;
  try {
    fn(ctx, 0, threads_);
  } catch (...) {
    keep_exception();
  }
  t_in_team = false;
  wait_workers();  // even after a throw: the workers use ctx, which lives in the caller's frame
  if (error_) {
    std::exception_ptr e;
    std::swap(e, error_);
    std::rethrow_exception(e);
  }
}

void ThreadPool::keep_exception() {
  std::lock_guard lock(error_mu_);
  if (!error_) error_ = std::current_exception();
}

void ThreadPool::wait_workers() {
  const auto done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (spin_until(done, spin_)) return;
  for (;;) {
    caller_sleeping_.store(1, std::memory_order_seq_cst);
    const uint32_t p = pending_.load(std::memory_order_seq_cst);
    if (p == 0) break;
    futex_wait(pending_, p);
  }
  caller_sleeping_.store(0, std::memory_order_relaxed);  // pending_ was read seq_cst (acquire) as 0
}

void ThreadPool::finish_one() {
  if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 && caller_sleeping_.load(std::memory_order_seq_cst))
    futex_wake(pending_, 1);
}

void ThreadPool::worker(int id) {
  t_in_team = true;  // a worker's own parallel steps run serially
  uint32_t seen = 0;
  for (;;) {
    const auto moved = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(moved, spin_)) {
      for (;;) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (generation_.load(std::memory_order_seq_cst) == seen) futex_wait(generation_, seen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        if (moved()) break;
      }
    }
    // Every worker takes part in every step, and the caller waits for all
    // before the next one: no generation is skipped and fn_/ctx_ stay put.
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    try {
      fn_(ctx_, id, threads_);
    } catch (...) {
      keep_exception();
    }
    finish_one();
  }
}

}  // namespace mnemo::kernels::cpu
