#pragma once
// Decides what runs in each step: decode tokens of running sequences first,
// then prefill chunks of waiting ones, under a token budget, allocating their
// KV slots in the paged cache as it goes. When the cache is full it preempts
// (swap to host, or recompute) a victim the policy picks. It only decides and
// allocates; the engine runs the step, commits the KV and reports back.
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/serving/policies.h"
#include "engine/serving/retention.h"

namespace mnemo::engine {

enum class PreemptMode {
  Recompute,  // free the blocks; on resume, prefill again (the prefix cache often still has them)
  Swap,       // copy the blocks to host memory and back, up to swap_bytes, else recompute
};

struct SchedulerOptions {
  int64_t token_budget = 256;  // tokens per step (decode + prefill chunks)
  int64_t max_running = 64;    // sequences in the running set
  PreemptMode preempt = PreemptMode::Swap;
  int64_t swap_bytes = int64_t(1) << 30;  // host memory all swapped-out caches may hold
};

struct ScheduledItem {
  Sequence* seq;
  int64_t n_tokens;  // tokens[seq->num_computed, +n_tokens) run this step, already appended to the cache
};

struct SchedulerCounters {
  int64_t preemptions = 0;
  int64_t swaps_out = 0;
  int64_t swaps_in = 0;
  int64_t prefix_hits = 0;    // admissions that reused cached blocks
  int64_t cached_tokens = 0;  // tokens those hits reused
  int64_t swapped_bytes = 0;  // now held on the host
};

class Scheduler {
 public:
  // retention (may be null): parked programs the deadlock guard releases
  // before work waits, and the host tier preempted and admitted turns use.
  Scheduler(SchedulerOptions opt, kv::KvCacheManager& cache, std::unique_ptr<OrderingPolicy> ordering,
            std::unique_ptr<VictimPolicy> victim, Retention* retention = nullptr);

  void add(Sequence* s);
  // Removes a finished or cancelled sequence wherever it is, freeing its cache.
  void remove(Sequence* s);
  std::vector<ScheduledItem> schedule();

  bool idle() const { return running_.empty() && waiting_.empty() && preempted_.empty(); }
  size_t num_running() const { return running_.size(); }
  size_t num_waiting() const { return waiting_.size() + preempted_.size(); }
  const SchedulerCounters& counters() const { return counters_; }

 private:
  void preempt(Sequence* s);
  bool admit(Sequence* s, int64_t budget, std::vector<ScheduledItem>& items);
  bool admit_from_snapshot(Sequence* s, int64_t budget, std::vector<ScheduledItem>& items);
  std::span<const int32_t> next_tokens(const Sequence& s, int64_t n) const;
  // Deadlock guard: frees a parked program's KV so s can run. False when none is parked.
  bool release_parked(const Sequence& s, const char* what);
  // Records how many blocks an admission lacked; returns false.
  bool no_room(int64_t tokens);

  SchedulerOptions opt_;
  kv::KvCacheManager& cache_;
  std::unique_ptr<OrderingPolicy> ordering_;
  std::unique_ptr<VictimPolicy> victim_;
  Retention* retention_;
  std::vector<Sequence*> running_;
  std::deque<Sequence*> preempted_;  // resumed before any new arrival
  std::vector<Sequence*> waiting_;
  SchedulerCounters counters_;
  int64_t shortfall_blocks_ = 0;  // blocks the last failed admission lacked
};

}  // namespace mnemo::engine
