#include "engine/serving/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>

namespace mnemo::engine {

Scheduler::Scheduler(SchedulerOptions opt, kv::KvCacheManager& cache, std::unique_ptr<OrderingPolicy> ordering,
                     std::unique_ptr<VictimPolicy> victim, Retention* retention)
    : opt_(opt), cache_(cache), ordering_(std::move(ordering)), victim_(std::move(victim)), retention_(retention) {}

bool Scheduler::release_parked(const Sequence& s, const char* what) {
  if (!retention_ || retention_->empty()) return false;
  // While other requests run, a request that would not fit even with every
  // parked block back waits for them, not for the parked programs: keep those.
  if (!running_.empty() && retention_->parked_blocks() < shortfall_blocks_) return false;
  return retention_->release_latest(s.request.program.id, std::string(what) + " request " + std::to_string(s.id));
}

void Scheduler::add(Sequence* s) {
  s->state = SeqState::Waiting;
  waiting_.push_back(s);
}

void Scheduler::remove(Sequence* s) {
  std::erase(running_, s);
  std::erase(waiting_, s);
  std::erase(preempted_, s);
  if (s->kv.valid()) cache_.free(s->kv);
  s->kv = {};
  counters_.swapped_bytes -= int64_t(s->swapped.size());
  s->swapped = {};
}

std::span<const int32_t> Scheduler::next_tokens(const Sequence& s, int64_t n) const {
  return std::span(s.tokens).subspan(size_t(s.num_computed), size_t(n));
}

void Scheduler::preempt(Sequence* s) {
  // Tokens and sampler state stay, so the resumed request continues exactly
  // where it was; only where its KV lives changes.
  std::erase(running_, s);
  s->state = SeqState::Waiting;
  const kv::KvConfig& c = cache_.config();
  const int64_t bytes = (cache_.committed(s->kv) + c.block_size - 1) / c.block_size * c.layers * c.bytes_per_block();
  if (opt_.preempt == PreemptMode::Swap && counters_.swapped_bytes + bytes <= opt_.swap_bytes) {
    s->swapped = cache_.export_sequence(s->kv);
    counters_.swapped_bytes += int64_t(s->swapped.size());
    ++counters_.swaps_out;
  } else {
    if (retention_) retention_->stash(*s);
    s->num_computed = 0;
  }
  cache_.free(s->kv);
  s->kv = {};
  ++s->stats.preemptions;
  preempted_.push_back(s);
  std::sort(preempted_.begin(), preempted_.end(), [&](auto* a, auto* b) { return ordering_->before(*a, *b); });
  ++counters_.preemptions;
  spdlog::debug("preempted request {} ({}, {} tokens computed)", s->id, s->swapped.empty() ? "recompute" : "swapped",
                s->num_computed);
}

bool Scheduler::no_room(int64_t tokens) {
  const int64_t bs = cache_.config().block_size;
  shortfall_blocks_ = (tokens + bs - 1) / bs - cache_.num_free_blocks();
  return false;
}

// Gives s a cache sequence holding its computed tokens, then appends its next
// chunk. False, with nothing held, when the cache has no room.
bool Scheduler::admit(Sequence* s, int64_t budget, std::vector<ScheduledItem>& items) {
  if (!s->swapped.empty()) {
    const int64_t n = std::min(s->uncomputed(), budget);
    const kv::AllocRequest need{kv::SeqId{}, s->num_computed + n};
    if (!cache_.can_allocate(std::span(&need, 1))) return no_room(need.num_tokens);
    const std::optional<kv::SeqId> id = cache_.import_sequence(s->swapped);
    if (!id) return no_room(need.num_tokens);
    s->kv = *id;
    counters_.swapped_bytes -= int64_t(s->swapped.size());
    s->swapped = {};
    ++counters_.swaps_in;
    if (retention_) retention_->admitted(*s, 0);
    const bool ok = cache_.append(s->kv, next_tokens(*s, n));
    assert(ok && "can_allocate promised room");
    (void)ok;
    items.push_back({s, n});
    return true;
  }
  if (s->start_kv_tokens > 0 && s->num_computed == 0) return admit_from_snapshot(s, budget, items);
  kv::PrefixMatch match;
  // All prompt rows were asked for: every position must be computed.
  if (s->request.logits != LogitsOutput::All) match = cache_.match_prefix(s->tokens, s->request.cache_salt);
  int64_t restored = 0;
  int64_t tier_need = 0;
  const Retention::Restore r = retention_ ? retention_->restore(*s, match.num_tokens,
                                                                std::min(int64_t(s->tokens.size()), budget), &tier_need)
                                          : Retention::Restore::None;
  if (r == Retention::Restore::NoRoom && (!running_.empty() || !retention_->empty())) {
    // Its KV waits in the host tier: copying it back later beats computing
    // it again now, while running work or parked KV will free room.
    cache_.release(std::move(match));
    return no_room(tier_need);
  }
  if (r == Retention::Restore::Restored) {
    // The host tier put a longer prefix back into the prefix index.
    restored = -match.num_tokens;
    cache_.release(std::move(match));
    match = cache_.match_prefix(s->tokens, s->request.cache_salt);
    restored += match.num_tokens;
  }
  const int64_t hit = match.num_tokens;
  const int64_t n = std::min(int64_t(s->tokens.size()) - hit, budget);
  const kv::AllocRequest need{kv::SeqId{}, n};
  if (!cache_.can_allocate(std::span(&need, 1))) {
    cache_.release(std::move(match));
    return no_room(n);
  }
  if (hit > 0) {
    ++counters_.prefix_hits;
    counters_.cached_tokens += hit;
    spdlog::debug("request {}: prefix cache hit, {} of {} tokens reused", s->id, hit, s->tokens.size());
  }
  if (hit > 0) {
    s->kv = cache_.create(std::move(match));
  } else {
    cache_.release(std::move(match));
    s->kv = cache_.create(s->request.cache_salt);
  }
  s->num_computed = hit;
  if (!s->admitted_once) s->stats.cached_tokens = std::min(hit, s->prompt_len());
  if (restored > 0) s->stats.restored_tokens += std::min(restored, std::max<int64_t>(0, s->prompt_len() - (hit - restored)));
  if (retention_) retention_->admitted(*s, hit);
  const bool ok = cache_.append(s->kv, next_tokens(*s, n));
  assert(ok && "can_allocate promised room");
  (void)ok;
  items.push_back({s, n});
  return true;
}

// A request with a starting snapshot (checked at submit): imported as its
// sequence, then only the tokens after it computed. Also after a recompute
// preemption: the snapshot is the cheapest way back.
bool Scheduler::admit_from_snapshot(Sequence* s, int64_t budget, std::vector<ScheduledItem>& items) {
  const int64_t n = std::min(int64_t(s->tokens.size()) - s->start_kv_tokens, budget);
  const kv::AllocRequest need{kv::SeqId{}, s->start_kv_slots + n};
  if (!cache_.can_allocate(std::span(&need, 1))) return no_room(need.num_tokens);
  std::optional<kv::SeqId> id;
  try {
    id = cache_.import_sequence(*s->request.start_kv);
  } catch (const kv::KvFormatError& e) {
    // Its headers were read at submit; a body import_sequence rejects means
    // the request runs from scratch instead.
    spdlog::warn("request {}: start_kv not usable, computing the whole prompt: {}", s->id, e.what());
    s->start_kv_tokens = 0;
    return admit(s, budget, items);
  }
  if (!id) return no_room(need.num_tokens);
  s->kv = *id;
  s->num_computed = s->start_kv_tokens;
  if (!cache_.append(s->kv, next_tokens(*s, n))) {
    cache_.free(s->kv);
    s->kv = {};
    s->num_computed = 0;
    return no_room(need.num_tokens);
  }
  if (!s->admitted_once) s->stats.cached_tokens = s->start_kv_tokens;
  spdlog::debug("request {}: started from a KV snapshot of {} tokens ({} slots per layer){}", s->id, s->start_kv_tokens,
                s->start_kv_slots, cache_.compacted(s->kv) ? ", compacted" : "");
  if (retention_) retention_->admitted(*s, 0);
  items.push_back({s, n});
  return true;
}

std::vector<ScheduledItem> Scheduler::schedule() {
  std::vector<ScheduledItem> items;
  int64_t budget = opt_.token_budget;

  // Running sequences first, oldest first, so preemption hits the newest.
  std::sort(running_.begin(), running_.end(), [&](auto* a, auto* b) { return ordering_->before(*a, *b); });
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* s = running_[i];
    const int64_t n = std::min(s->uncomputed(), budget);
    if (n == 0) {
      ++i;
      continue;
    }
    if (!cache_.append(s->kv, next_tokens(*s, n))) {
      // Parked KV is only a bet on a future turn: it goes before running work does.
      shortfall_blocks_ = 0;
      if (release_parked(*s, "to grow")) continue;
      // Candidates: this sequence and the ones after it (not yet scheduled,
      // so their caches hold only committed tokens).
      const std::span<Sequence* const> rest(running_.data() + i, running_.size() - i);
      preempt(victim_->choose(rest));
      continue;  // running_[i] is s again, or the next one if s was the victim
    }
    items.push_back({s, n});
    budget -= n;
    ++i;
  }

  // Then admit: preempted sequences before new arrivals, each in policy
  // order. Admission never preempts.
  std::sort(waiting_.begin(), waiting_.end(), [&](auto* a, auto* b) { return ordering_->before(*a, *b); });
  while (budget > 0 && int64_t(running_.size()) < opt_.max_running) {
    const bool from_preempted = !preempted_.empty();
    if (!from_preempted && waiting_.empty()) break;
    Sequence* s = from_preempted ? preempted_.front() : waiting_.front();
    if (!admit(s, budget, items)) {
      // Deadlock guard: never let parked KV keep a request waiting.
      if (release_parked(*s, "to admit")) continue;
      break;
    }
    if (from_preempted) preempted_.pop_front();
    else waiting_.erase(waiting_.begin());
    s->state = SeqState::Running;
    s->admitted_once = true;
    running_.push_back(s);
    budget -= items.back().n_tokens;
  }
  return items;
}

}  // namespace mnemo::engine
