// The persistent ThreadPool behind parallel.h. The thread count, and the
// pool, belong to the calling thread (as OpenMP's did): the engine loop, an
// embeddings worker and a memory build each run their own team of the size
// they set, without contending for one.
#include <sched.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/thread_pool.h"

namespace mnemo::kernels::cpu {
namespace {

// MNEMO_THREADS, else OMP_NUM_THREADS (scripts that cap OpenMP keep working),
// else the CPUs this process may run on.
int default_threads() {
  for (const char* var : {"MNEMO_THREADS", "OMP_NUM_THREADS"})
    if (const char* s = std::getenv(var); s && std::atoi(s) > 0) return std::atoi(s);
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return std::max(1u, std::thread::hardware_concurrency());
}

int process_default() {
  static const int n = default_threads();
  return n;
}

thread_local int t_threads = 0;  // 0: not set on this thread
thread_local std::unique_ptr<ThreadPool> t_pool;
std::atomic<detail::TeamRunner> g_runner{nullptr};
thread_local int t_bursts = 0;  // TeamBursts open on this thread

}  // namespace

TeamBurst::TeamBurst() {
  if (t_bursts++ == 0 && t_pool) t_pool->hold(true);
}

TeamBurst::~TeamBurst() {
  if (--t_bursts == 0 && t_pool) t_pool->hold(false);
}

int num_threads() { return t_threads > 0 ? t_threads : process_default(); }
void set_num_threads(int n) { t_threads = n < 1 ? 1 : n; }

namespace detail {

void set_team_runner(TeamRunner r) { g_runner.store(r); }

void run_team(TeamFn fn, void* ctx, bool parallel, bool shared) {
  const int n = num_threads();
  if (!parallel || n <= 1 || ThreadPool::in_team()) {
    fn(ctx, 0, 1);
    return;
  }
  if (const TeamRunner r = g_runner.load(std::memory_order_relaxed)) {
    r(fn, ctx, n);
    return;
  }
  // Sized exactly: a count changed on this thread rebuilds the team once.
  if (!t_pool || t_pool->threads() != n) {
    t_pool.reset();
    t_pool = std::make_unique<ThreadPool>(n);
    t_pool->hold(t_bursts > 0);
  }
  if (shared) t_pool->run_shared(fn, ctx);
  else t_pool->run(fn, ctx);
}

}  // namespace detail

}  // namespace mnemo::kernels::cpu
