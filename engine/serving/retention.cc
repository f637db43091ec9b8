#include "engine/serving/retention.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace mnemo::engine {

namespace {
using Clock = Retention::Clock;

Clock::time_point after(Clock::time_point t, double seconds) {
  return t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Programs not seen for this long are forgotten (their next turn counts as a first turn).
constexpr auto kSeenHorizon = std::chrono::minutes(30);
constexpr size_t kSeenPruneAt = size_t(1) << 16;
}  // namespace

Retention::Retention(RetentionOptions opt, kv::KvCacheManager& cache) : opt_(std::move(opt)), cache_(cache) {}

Retention::~Retention() {
  for (auto& [_, p] : parked_) cache_.free(p.seq);
}

void Retention::arrived(Sequence& s) {
  const uint64_t p = s.request.program.id;
  if (p == 0) return;
  const auto now = Clock::now();
  auto [it, fresh] = seen_.try_emplace(p, now);
  s.later_turn = !fresh || parked(p);
  it->second = now;
  if (seen_.size() > kSeenPruneAt) std::erase_if(seen_, [&](const auto& e) { return now - e.second > kSeenHorizon; });
}

void Retention::park(Sequence& s) {
  const uint64_t p = s.request.program.id;
  if (parked(p)) release(p, false, "replaced by a newer turn");
  const double grace = opt_.hold_grace_seconds;
  Parked entry{s.kv, s.request.program.arrival, after(Clock::now(), grace), cache_.length(s.kv, 0), s.request.cache_salt};
  entry.blocks = (entry.blocks + cache_.config().block_size - 1) / cache_.config().block_size;
  parked_.emplace(p, entry);
  s.kv = {};
  spdlog::debug("retention: parked program {} ({} blocks, {} tokens) after request {}, {} s until retain()", p,
                entry.blocks, cache_.committed(entry.seq), s.id, grace);
}

void Retention::retain(uint64_t program, double seconds) {
  auto it = parked_.find(program);
  if (it == parked_.end()) {
    spdlog::debug("retention: retain({}, {} s) ignored: nothing parked", program, seconds);
    return;
  }
  if (seconds <= 0) {
    release(program, true, "retain 0");
    return;
  }
  it->second.deadline = after(Clock::now(), seconds);
  spdlog::debug("retention: program {} keeps {} blocks for {:.3f} s", program, it->second.blocks, seconds);
}

std::optional<Clock::time_point> Retention::expire() {
  if (parked_.empty()) return std::nullopt;
  const auto now = Clock::now();
  std::vector<uint64_t> due;
  for (const auto& [p, e] : parked_)
    if (e.deadline <= now) due.push_back(p);
  for (uint64_t p : due) {
    ++counters_.expiries;
    release(p, true, "deadline passed");
  }
  return next_deadline();
}

std::optional<Clock::time_point> Retention::next_deadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& [_, e] : parked_)
    if (!next || e.deadline < *next) next = e.deadline;
  return next;
}

bool Retention::release_latest(uint64_t spare, std::string_view why) {
  auto victim = parked_.end();
  for (auto it = parked_.begin(); it != parked_.end(); ++it) {
    if (victim == parked_.end()) {
      victim = it;
      continue;
    }
    // Spare `spare` while another can go; among the rest, the latest program arrival (ids break ties).
    const bool it_spared = it->first == spare, v_spared = victim->first == spare;
    if (it_spared != v_spared) {
      if (v_spared) victim = it;
      continue;
    }
    if (std::tie(it->second.arrival, it->first) > std::tie(victim->second.arrival, victim->first)) victim = it;
  }
  if (victim == parked_.end()) return false;
  ++counters_.guard_releases;
  release(victim->first, true, why);
  return true;
}

void Retention::admitted(const Sequence& s, int64_t hit) {
  const uint64_t p = s.request.program.id;
  if (p == 0 || !parked(p)) return;
  // The new sequence holds references on the blocks it reuses, so freeing
  // the parked sequence only returns what the new turn did not take.
  if (hit > 0) ++counters_.retained_hits;
  spdlog::debug("retention: request {} of program {} admitted, {} tokens reused from its parked KV", s.id, p, hit);
  auto it = parked_.find(p);
  cache_.free(it->second.seq);
  parked_.erase(it);
}

void Retention::stash(const Sequence& s) {
  if (!opt_.tier || s.request.program.id == 0 || !s.kv.valid()) return;
  if (put_tier(s.request.program.id, s.kv, s.request.cache_salt))
    spdlog::debug("retention: preempted request {} of program {} moved to the host tier", s.id, s.request.program.id);
}

bool Retention::put_tier(uint64_t program, kv::SeqId seq, uint64_t salt) {
  KvTier::Entry e;
  const auto tokens = cache_.tokens(seq);
  e.tokens.assign(tokens.begin(), tokens.begin() + cache_.committed(seq));
  if (e.tokens.size() < size_t(cache_.config().block_size)) return false;  // nothing a prefix hit could reuse
  e.salt = salt;
  const auto t0 = Clock::now();
  e.kv = cache_.export_sequence(seq);
  counters_.tier_copy_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  counters_.tier_copy_bytes += int64_t(e.kv.size());
  if (!opt_.tier->put(program, std::move(e))) return false;
  ++counters_.tier_puts;
  return true;
}

void Retention::release(uint64_t program, bool to_tier, std::string_view why) {
  auto it = parked_.find(program);
  if (it == parked_.end()) return;
  const bool tiered = to_tier && opt_.tier && put_tier(program, it->second.seq, it->second.salt);
  spdlog::debug("retention: released program {} ({} blocks): {} -> {}", program, it->second.blocks, why,
                tiered ? "host tier" : "prefix-cache LRU");
  cache_.free(it->second.seq);
  parked_.erase(it);
}

Retention::Restore Retention::restore(const Sequence& s, int64_t hit, int64_t room, int64_t* need_tokens) {
  if (!opt_.tier || s.request.logits == LogitsOutput::All) return Restore::None;
  const int64_t bs = cache_.config().block_size;
  // The most a prefix hit can reuse: whole blocks, never the last token.
  const int64_t reachable = (int64_t(s.tokens.size()) - 1) / bs * bs;
  if (reachable <= hit) return Restore::None;
  std::optional<KvTier::Entry> e = opt_.tier->take(s.request.program.id, s.tokens, s.request.cache_salt);
  if (!e) {
    ++counters_.tier_misses;
    return Restore::None;
  }
  const bool prefix = e->salt == s.request.cache_salt && e->tokens.size() <= s.tokens.size() &&
                      std::equal(e->tokens.begin(), e->tokens.end(), s.tokens.begin());
  const int64_t gain = std::min<int64_t>(int64_t(e->tokens.size()) / bs * bs, reachable);
  if (!prefix) {
    spdlog::warn("retention: host tier returned an entry that is not a prefix of request {}; dropped", s.id);
    ++counters_.tier_misses;
    return Restore::None;
  }
  const kv::AllocRequest need{kv::SeqId{}, int64_t(e->tokens.size()) + room + bs};
  if (gain <= hit) {
    // The pool still holds as much. The program's own copy is now redundant
    // (this turn carries its KV forward); another program's goes back.
    if (e->program != s.request.program.id) opt_.tier->put(e->program, std::move(*e));
    return Restore::None;
  }
  if (!cache_.can_allocate(std::span(&need, 1))) {
    if (need_tokens) *need_tokens = need.num_tokens;
    opt_.tier->put(e->program, std::move(*e));  // no room now; keep it for later
    return Restore::NoRoom;
  }
  std::optional<kv::SeqId> seq;
  const auto t0 = Clock::now();
  try {
    seq = cache_.import_sequence(e->kv);
    counters_.tier_copy_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    counters_.tier_copy_bytes += int64_t(e->kv.size());
  } catch (const kv::KvFormatError& err) {
    spdlog::warn("retention: host tier entry for request {} does not fit this cache: {}", s.id, err.what());
    ++counters_.tier_misses;
    return Restore::None;
  }
  if (!seq) {
    if (need_tokens) *need_tokens = need.num_tokens;
    opt_.tier->put(e->program, std::move(*e));
    return Restore::NoRoom;
  }
  // Importing indexed its full blocks; freeing leaves them in the prefix
  // cache's LRU, where the caller's match_prefix finds them next.
  cache_.free(*seq);
  ++counters_.tier_hits;
  spdlog::debug("retention: request {} restored {} tokens from the host tier (prefix hit was {})", s.id, gain, hit);
  return Restore::Restored;
}

void Retention::computed_prompt(const Sequence& s, int64_t n) {
  if (s.later_turn) counters_.recomputed_tokens += n;
}

int64_t Retention::parked_blocks() const {
  int64_t n = 0;
  for (const auto& [_, e] : parked_) n += e.blocks;
  return n;
}

RetentionCounters Retention::counters() const {
  RetentionCounters c = counters_;
  c.parked = int64_t(parked_.size());
  c.parked_blocks = parked_blocks();
  c.tier_bytes = opt_.tier ? opt_.tier->bytes() : 0;
  return c;
}

}  // namespace mnemo::engine
