#include "daemon/app/session_memory.h"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "daemon/app/response_spec.h"
#include "engine/kv/kv_cache_manager.h"
#include "memory/compress/block_prefill.h"
#include "memory/compress/layer_budgets.h"

namespace mnemo::daemon::app {

namespace {

using Clock = std::chrono::steady_clock;

const std::set<std::string> kPolicies = {"full", "streaming", "snapkv", "h2o", "keydiff", "episodic"};

int64_t integer_field(const nlohmann::ordered_json& j, const char* key, int64_t lo, int64_t hi, int64_t dflt) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  const std::string field = std::string("memory.") + key;
  if (!it->is_number_integer() && !it->is_number_unsigned())
    throw BadRequest(field + ": expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi), field);
  const bool in_range = it->is_number_unsigned() ? it->get<uint64_t>() <= uint64_t(hi) && int64_t(it->get<uint64_t>()) >= lo
                                                 : it->get<int64_t>() >= lo && it->get<int64_t>() <= hi;
  if (!in_range)
    throw BadRequest(field + ": expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                         it->dump(),
                     field);
  return it->get<int64_t>();
}

}  // namespace

MemoryConfig parse_memory_config(const nlohmann::ordered_json& j) {
  if (!j.is_object()) throw BadRequest("memory: expected an object", "memory");
  for (const auto& [key, _] : j.items())
    if (key != "policy" && key != "budget_tokens" && key != "block_tokens" && key != "episodes")
      throw BadRequest("memory." + key + ": unknown field (known: policy, budget_tokens, block_tokens, episodes)",
                       "memory." + key);
  MemoryConfig c;
  const auto p = j.find("policy");
  if (p == j.end() || !p->is_string() || !kPolicies.count(p->get<std::string>()))
    throw BadRequest("memory.policy: expected one of full, streaming, snapkv, h2o, keydiff, episodic" +
                         (p == j.end() ? std::string() : ", got " + p->dump()),
                     "memory.policy");
  c.policy = p->get<std::string>();
  c.budget_tokens = integer_field(j, "budget_tokens", kMinMemoryBudget, kMaxMemoryBudget, c.budget_tokens);
  c.block_tokens = integer_field(j, "block_tokens", kMinMemoryBlock, kMaxMemoryBlock, c.block_tokens);
  c.episodes = integer_field(j, "episodes", 1, kMaxEpisodes, c.episodes);
  if (c.policy == "episodic")
    throw BadRequest("memory.policy: episodic is not yet served by this daemon (full, streaming, snapkv, h2o, keydiff are)",
                     "memory.policy");
  return c;
}

nlohmann::ordered_json to_json(const MemoryConfig& c) {
  nlohmann::ordered_json j = {{"policy", c.policy}, {"budget_tokens", c.budget_tokens}, {"block_tokens", c.block_tokens}};
  if (c.policy == "episodic") j["episodes"] = c.episodes;
  return j;
}

// One session's compressed history. Immutable once kept, but for its policy
// (h2o's accumulated mass belongs to the sequence), which only the next
// build, under build_mu_, takes over.
struct SessionMemory::Entry {
  MemoryConfig config;
  uint64_t salt = 0;
  std::vector<int32_t> tokens;  // the prompt prefix the snapshot stands for
  std::shared_ptr<const std::vector<uint8_t>> kv;
  std::unique_ptr<memory::compress::Policy> policy;
  int64_t held = 0;  // slots of the longest layer
  nlohmann::ordered_json usage() const {
    return {{"policy", config.policy},
            {"history_tokens", held},
            {"budget_tokens", config.budget_tokens},
            {"compressed_tokens", int64_t(tokens.size())}};
  }
};

SessionMemory::SessionMemory(const engine::Model& model, engine::kv::KvConfig kv, SessionMemoryOptions opt,
                             metrics::Registry& registry)
    : model_(model),
      kv_(kv),
      opt_(opt),
      built_(registry.counter("mnemo_session_memory_builds_total",
                              "compressed session histories built (block-wise prefill, from scratch or continued)")),
      build_seconds_(registry.gauge("mnemo_session_memory_build_seconds_total",
                                    "seconds spent building compressed session histories")) {
  bytes_gauge_ = &registry.gauge("mnemo_session_memory_bytes", "bytes of compressed session histories held");
  sessions_gauge_ = &registry.gauge("mnemo_session_memory_sessions", "sessions whose compressed history is held");
  bytes_gauge_->set_callback([this] { return double(bytes()); });
  sessions_gauge_->set_callback([this] { return double(sessions_held()); });
}

SessionMemory::~SessionMemory() {
  bytes_gauge_->set_callback(nullptr);
  sessions_gauge_->set_callback(nullptr);
}

int64_t SessionMemory::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

int64_t SessionMemory::sessions_held() const {
  std::lock_guard lock(mu_);
  return int64_t(entries_.size());
}

void SessionMemory::forget(const std::string& session_id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(session_id);
  if (it == entries_.end()) return;
  bytes_ -= int64_t(it->second.first->kv->size());
  lru_.erase(it->second.second);
  entries_.erase(it);
}

void SessionMemory::keep(const std::string& session_id, std::shared_ptr<Entry> e) {
  const int64_t size = int64_t(e->kv->size());
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(session_id); it != entries_.end()) {
    bytes_ -= int64_t(it->second.first->kv->size());
    lru_.erase(it->second.second);
    entries_.erase(it);
  }
  if (size > opt_.max_bytes) {
    spdlog::warn("session memory: {}'s compressed history ({} bytes) not kept: larger than the budget of {} bytes; "
                 "the next response rebuilds it",
                 session_id, size, opt_.max_bytes);
    return;
  }
  while (bytes_ + size > opt_.max_bytes && !lru_.empty()) {
    const std::string victim = lru_.back();
    auto it = entries_.find(victim);
    const int64_t freed = int64_t(it->second.first->kv->size());
    bytes_ -= freed;
    lru_.pop_back();
    entries_.erase(it);
    spdlog::info("session memory: dropped {}'s compressed history ({} bytes), least recently used, to keep {}'s "
                 "within the budget of {} bytes",
                 victim, freed, session_id, opt_.max_bytes);
  }
  lru_.push_front(session_id);
  entries_[session_id] = {std::move(e), lru_.begin()};
  bytes_ += size;
  spdlog::debug("session memory: kept {}'s compressed history ({} bytes; {} of {} bytes held for {} sessions)",
                session_id, size, bytes_, opt_.max_bytes, entries_.size());
}

std::optional<SessionMemory::Start> SessionMemory::prepare(const std::string& session_id, const MemoryConfig& config,
                                                            std::span<const int32_t> prompt, uint64_t salt) {
  if (config.policy == "full") return std::nullopt;
  const int64_t B = config.block_tokens;
  // Whole blocks of the prompt, at least one token left for the engine to compute.
  const int64_t target = (int64_t(prompt.size()) - 1) / B * B;
  if (target <= config.budget_tokens) return std::nullopt;

  std::lock_guard build(build_mu_);
  std::shared_ptr<Entry> prev;
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(session_id); it != entries_.end()) {
      prev = it->second.first;
      lru_.splice(lru_.begin(), lru_, it->second.second);
    }
  }
  const bool continues = prev && prev->config == config && prev->salt == salt && prev->policy &&
                         int64_t(prev->tokens.size()) <= target &&
                         std::equal(prev->tokens.begin(), prev->tokens.end(), prompt.begin());
  if (prev && !continues)
    spdlog::info("session memory: {}'s history changed (or its setting did): rebuilding from scratch", session_id);
  // Grown by less than a block since the last build: the engine computes the rest.
  if (continues && target - int64_t(prev->tokens.size()) < B) return Start{prev->kv, prev->usage()};

  const auto t0 = Clock::now();
  engine::kv::KvConfig k = kv_;
  // Budget plus one block at the peak (uniform selection), and room for the
  // snapshot being continued; twice that against rounding to whole blocks.
  const int64_t slots = 2 * (config.budget_tokens + B + k.block_size);
  k.bytes_budget = (slots + k.block_size - 1) / k.block_size * k.layers * k.bytes_per_block();
  engine::kv::KvCacheManager cache(k);
  engine::kv::SeqId seq;
  int64_t from = 0;
  std::unique_ptr<memory::compress::Policy> policy;
  if (continues) {
    const std::optional<engine::kv::SeqId> id = cache.import_sequence(*prev->kv);
    if (!id) throw std::runtime_error("session memory: the previous compressed history does not fit its build cache");
    seq = *id;
    from = int64_t(prev->tokens.size());
    policy = std::move(prev->policy);  // prev is replaced below, or dropped if this fails
  } else {
    seq = cache.create(salt);
    policy = memory::compress::make_policy(config.policy);
  }
  if (continues) forget(session_id);  // its policy moved here: no later build may continue it
  memory::compress::BlockPrefillOptions bo;
  bo.block_tokens = B;
  bo.layer_budget = memory::compress::uniform_budgets(k.layers, config.budget_tokens);
  // Uniform selection: every head keeps the budget, so the held history (and
  // the pool a response needs for it) never exceeds budget + one block.
  bo.head_wise = false;
  omp_set_num_threads(std::max(1, opt_.threads));
  const memory::compress::BlockPrefillResult r =
      memory::compress::block_prefill(model_, cache, seq, prompt.subspan(size_t(from), size_t(target - from)), *policy, bo);

  auto e = std::make_shared<Entry>();
  e->config = config;
  e->salt = salt;
  e->tokens.assign(prompt.begin(), prompt.begin() + target);
  e->kv = std::make_shared<const std::vector<uint8_t>>(cache.export_sequence(seq));
  e->policy = std::move(policy);
  for (int64_t l = 0; l < k.layers; ++l) e->held = std::max(e->held, cache.length(seq, l));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  built_.inc();
  build_seconds_.inc(seconds);
  spdlog::info("session memory: {}: {} history tokens held in {} slots per layer by {} (budget {}, blocks of {}; {} "
               "tokens {}), {:.2f} s, snapshot of {} bytes",
               session_id, target, e->held, config.policy, config.budget_tokens, B, target - from,
               continues ? "added to the previous build" : "from scratch", seconds, e->kv->size());
  Start out{e->kv, e->usage()};
  keep(session_id, std::move(e));
  return out;
}

}  // namespace mnemo::daemon::app
