#pragma once
// Decides what runs in each step: decode tokens of running sequences first,
// then prefill chunks of waiting ones, under a token budget and a KV budget.
// It only decides; the engine runs the step and reports back.
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "engine/serving/policies.h"

namespace mnemo::engine {

struct SchedulerOptions {
  int64_t token_budget = 256;       // tokens per step (decode + prefill chunks)
  int64_t max_running = 64;         // sequences in the running set
  int64_t kv_token_capacity = 1 << 16;  // KV positions all caches may hold together
};

struct ScheduledItem {
  Sequence* seq;
  int64_t n_tokens;  // tokens[seq->num_computed, +n_tokens) run this step
};

class Scheduler {
 public:
  Scheduler(SchedulerOptions opt, std::unique_ptr<OrderingPolicy> ordering, std::unique_ptr<VictimPolicy> victim);

  void add(Sequence* s);
  // Removes a finished or cancelled sequence wherever it is.
  void remove(Sequence* s);
  std::vector<ScheduledItem> schedule();

  bool idle() const { return running_.empty() && waiting_.empty(); }
  size_t num_running() const { return running_.size(); }
  size_t num_waiting() const { return waiting_.size(); }
  int64_t kv_tokens_used() const;
  int64_t preemptions() const { return preemptions_; }

 private:
  void preempt(Sequence* s);

  SchedulerOptions opt_;
  std::unique_ptr<OrderingPolicy> ordering_;
  std::unique_ptr<VictimPolicy> victim_;
  std::vector<Sequence*> running_;
  std::deque<Sequence*> preempted_;  // resumed before any new arrival
  std::vector<Sequence*> waiting_;
  int64_t preemptions_ = 0;
};

}  // namespace mnemo::engine
