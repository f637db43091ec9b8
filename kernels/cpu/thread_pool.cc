#include "kernels/cpu/thread_pool.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <sched.h>
#include <unistd.h>

#include <bit>
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

// The low 32 bits of a 64-bit word, as a futex (little-endian: its first half).
static_assert(std::endian::native == std::endian::little);
uint32_t* low_half(std::atomic<uint64_t>& word) { return reinterpret_cast<uint32_t*>(&word); }

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

namespace {
std::atomic<int> g_hold_allowed{-1};  // -1: not decided yet
}  // namespace

bool ThreadPool::hold_allowed() {
  int v = g_hold_allowed.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* s = std::getenv("MNEMO_POOL_HOLD");
    v = s && std::atoi(s) != 0;
    int expected = -1;
    if (!g_hold_allowed.compare_exchange_strong(expected, v)) v = expected;
  }
  return v != 0;
}

void ThreadPool::allow_hold(bool on) { g_hold_allowed.store(on ? 1 : 0); }

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
  start(fn, ctx, false);
  wait_workers();  // even after a throw: the workers use ctx, which lives in the caller's frame
  rethrow_kept();
}

void ThreadPool::run_shared(Fn fn, void* ctx) {
  if (threads_ == 1 || t_in_team) {
    fn(ctx, 0, 1);
    return;
  }
  start(fn, ctx, true);
  close_and_wait();
  rethrow_kept();
}

// Publishes the step, wakes sleeping workers and runs the caller's share.
void ThreadPool::start(Fn fn, void* ctx, bool shared) {
  fn_ = fn;
  ctx_ = ctx;
  const uint32_t g = generation_.load(std::memory_order_relaxed) + 1;
  if (!shared) pending_.store(uint32_t(threads_ - 1), std::memory_order_relaxed);
  join_.store(uint64_t(g) << 32 | (shared ? kShared : 0), std::memory_order_release);
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
}

void ThreadPool::rethrow_kept() {
  if (error_) {
    std::exception_ptr e;
    std::swap(e, error_);
    std::rethrow_exception(e);
  }
}

void ThreadPool::close_and_wait() {
  if ((join_.fetch_or(kClosed, std::memory_order_seq_cst) & kActive) == 0) return;
  const auto done = [this] { return (join_.load(std::memory_order_acquire) & kActive) == 0; };
  if (spin_until(done, spin_) || poll_while_held(done)) return;
  for (;;) {
    caller_sleeping_.store(1, std::memory_order_seq_cst);
    const uint64_t w = join_.load(std::memory_order_seq_cst);
    if ((w & kActive) == 0) break;
    syscall(SYS_futex, low_half(join_), FUTEX_WAIT_PRIVATE, uint32_t(w), nullptr, nullptr, 0);
  }
  caller_sleeping_.store(0, std::memory_order_relaxed);
}

void ThreadPool::keep_exception() {
  std::lock_guard lock(error_mu_);
  if (!error_) error_ = std::current_exception();
}

template <class Done>
bool ThreadPool::poll_while_held(Done done) {
  const int64_t t0 = now_ns();
  if (t0 < contended_until_.load(std::memory_order_relaxed)) return done();
  for (int64_t t = t0; hold_.load(std::memory_order_relaxed);) {
    if (spin_until(done, spin_)) return true;
    sched_yield();
    const int64_t now = now_ns();
    // A round that took far longer than its spin: another thread ran on this
    // core (the yield, or a preemption, handed it over). The machine is busy,
    // and polling there only burns the share of CPU that the threads doing
    // the work need: sleep between steps for a while.
    if (now - t > spin_ + kContendedRoundNs) {
      contended_until_.store(now + kContendedBackoffNs, std::memory_order_relaxed);
      break;
    }
    if (now - t0 > kHoldMaxNs) break;
    t = now;
  }
  return done();
}

void ThreadPool::wait_workers() {
  const auto done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (spin_until(done, spin_) || poll_while_held(done)) return;
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
    if (!spin_until(moved, spin_) && !poll_while_held(moved)) {
      for (;;) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (generation_.load(std::memory_order_seq_cst) == seen) futex_wait(generation_, seen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        if (moved()) break;
      }
    }
    if (stop_) return;
    // The step to take part in is the one join_ describes: the latest, which
    // (being published before generation_ moves) may be newer than the
    // generation seen, never older.
    uint64_t w = join_.load(std::memory_order_acquire);
    if (uint32_t(w >> 32) == seen) continue;  // handled already; generation_ is catching up
    seen = uint32_t(w >> 32);
    if (w & kShared) {
      // Join unless the step is over (closed, or a later one began: only a
      // shared step ends without this worker). Once joined, the caller waits
      // for this worker, so fn_/ctx_ stay put until it leaves.
      bool joined = false;
      while (uint32_t(w >> 32) == seen && !(w & kClosed) && !joined)
        joined = join_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire);
      if (!joined) continue;
      try {
        fn_(ctx_, id, threads_);
      } catch (...) {
        keep_exception();
      }
      w = join_.fetch_sub(1, std::memory_order_seq_cst);
      if ((w & kClosed) && (w & kActive) == 1 && caller_sleeping_.load(std::memory_order_seq_cst))
        syscall(SYS_futex, low_half(join_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
      continue;
    }
    // Every worker takes part in every other step, and the caller waits for
    // all before the next one: fn_/ctx_ stay put.
    try {
      fn_(ctx_, id, threads_);
    } catch (...) {
      keep_exception();
    }
    finish_one();
  }
}

}  // namespace mnemo::kernels::cpu
