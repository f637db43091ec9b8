#include "engine/serving/scheduler.h"

#include <algorithm>
#include <cassert>

namespace mnemo::engine {

Scheduler::Scheduler(SchedulerOptions opt, std::unique_ptr<OrderingPolicy> ordering, std::unique_ptr<VictimPolicy> victim)
    : opt_(opt), ordering_(std::move(ordering)), victim_(std::move(victim)) {}

void Scheduler::add(Sequence* s) {
  s->state = SeqState::Waiting;
  waiting_.push_back(s);
}

void Scheduler::remove(Sequence* s) {
  std::erase(running_, s);
  std::erase(waiting_, s);
  std::erase(preempted_, s);
}

int64_t Scheduler::kv_tokens_used() const {
  int64_t used = 0;
  for (const Sequence* s : running_) used += s->num_computed;
  return used;
}

void Scheduler::preempt(Sequence* s) {
  // Recompute on resume: the cache goes, the tokens (and sampler state) stay,
  // so the resumed request continues exactly where it was.
  std::erase(running_, s);
  s->state = SeqState::Waiting;
  s->cache.reset();
  s->num_computed = 0;
  preempted_.push_back(s);
  std::sort(preempted_.begin(), preempted_.end(), [&](auto* a, auto* b) { return ordering_->before(*a, *b); });
  ++preemptions_;
}

std::vector<ScheduledItem> Scheduler::schedule() {
  std::vector<ScheduledItem> items;
  int64_t budget = opt_.token_budget;
  int64_t kv_used = kv_tokens_used();

  // Running sequences first, oldest first, so preemption hits the newest.
  std::sort(running_.begin(), running_.end(), [&](auto* a, auto* b) { return ordering_->before(*a, *b); });
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* s = running_[i];
    const int64_t n = std::min(s->uncomputed(), budget);
    if (n == 0) {
      ++i;
      continue;
    }
    if (kv_used + n > opt_.kv_token_capacity) {
      // Candidates: this sequence and the ones after it (not yet scheduled).
      const std::span<Sequence* const> rest(running_.data() + i, running_.size() - i);
      Sequence* v = victim_->choose(rest);
      kv_used -= v->num_computed;
      preempt(v);
      continue;  // running_[i] is s again, or the next one if s was the victim
    }
    items.push_back({s, n});
    budget -= n;
    kv_used += n;
    ++i;
  }

  // Then admit: preempted sequences before new arrivals, each in policy order.
  std::sort(waiting_.begin(), waiting_.end(), [&](auto* a, auto* b) { return ordering_->before(*a, *b); });
  while (budget > 0 && int64_t(running_.size()) < opt_.max_running) {
    const bool from_preempted = !preempted_.empty();
    if (!from_preempted && waiting_.empty()) break;
    Sequence* s = from_preempted ? preempted_.front() : waiting_.front();
    const int64_t n = std::min(s->uncomputed(), budget);
    if (kv_used + n > opt_.kv_token_capacity) break;  // admission never preempts
    if (from_preempted) preempted_.pop_front();
    else waiting_.erase(waiting_.begin());
    s->state = SeqState::Running;
    running_.push_back(s);
    items.push_back({s, n});
    budget -= n;
    kv_used += n;
  }
  return items;
}

}  // namespace mnemo::engine
