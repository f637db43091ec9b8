#include "daemon/app/session_memory.h"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "daemon/app/response_spec.h"
#include "daemon/app/session_episodes.h"
#include "engine/kv/kv_cache_manager.h"
#include "kernels/cpu/parallel.h"
#include "memory/compress/block_prefill.h"
#include "memory/compress/layer_budgets.h"
#include "memory/episodes/hidden_state_embedder.h"
#include "memory/episodes/tfidf_embedder.h"

namespace mnemo::daemon::app {

namespace {

using Clock = std::chrono::steady_clock;

namespace ep = memory::episodes;

// Both counts are per thread: the kernels' for the forward passes, OpenMP's
// for faiss and episode clustering.
void set_build_threads(int n) {
  kernels::cpu::set_num_threads(std::max(1, n));
  omp_set_num_threads(std::max(1, n));
}

std::string episode_key(const std::string& session_id, int32_t episode) {
  return session_id + "#episode" + std::to_string(episode);
}

// Query tokens of an episode's patched policy, at most.
constexpr size_t kMaxPatchTokens = 1024;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
    if (key != "policy" && key != "budget_tokens" && key != "block_tokens" && key != "episodes" && key != "embedder" &&
        key != "segmentation")
      throw BadRequest("memory." + key +
                           ": unknown field (known: policy, budget_tokens, block_tokens, episodes, embedder, "
                           "segmentation)",
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
  if (const auto e = j.find("embedder"); e != j.end() && !e->is_null()) {
    if (c.policy != "episodic")
      throw BadRequest("memory.embedder: only the episodic policy embeds its history", "memory.embedder");
    if (!e->is_string() || (e->get<std::string>() != "model" && e->get<std::string>() != "tfidf"))
      throw BadRequest("memory.embedder: expected \"model\" or \"tfidf\", got " + e->dump(), "memory.embedder");
    c.embedder = e->get<std::string>();
  }
  if (const auto g = j.find("segmentation"); g != j.end() && !g->is_null()) {
    if (c.policy != "episodic")
      throw BadRequest("memory.segmentation: only the episodic policy cuts its history into episodes",
                       "memory.segmentation");
    if (!g->is_string() || (g->get<std::string>() != "kmeans" && g->get<std::string>() != "time"))
      throw BadRequest("memory.segmentation: expected \"kmeans\" or \"time\", got " + g->dump(),
                       "memory.segmentation");
    c.segmentation = g->get<std::string>();
  }
  return c;
}

nlohmann::ordered_json to_json(const MemoryConfig& c) {
  nlohmann::ordered_json j = {{"policy", c.policy}, {"budget_tokens", c.budget_tokens}, {"block_tokens", c.block_tokens}};
  if (c.policy == "episodic") {
    j["episodes"] = c.episodes;
    j["embedder"] = c.embedder;
    j["segmentation"] = c.segmentation;
  }
  return j;
}

nlohmann::ordered_json SessionMemory::Entry::usage() const {
  return {{"policy", config.policy},
          {"history_tokens", held},
          {"budget_tokens", config.budget_tokens},
          {"compressed_tokens", int64_t(tokens.size())}};
}

SessionMemory::SessionMemory(const engine::Model& model, engine::kv::KvConfig kv, SessionMemoryOptions opt,
                             metrics::Registry& registry)
    : model_(model),
      kv_(kv),
      opt_(opt),
      built_(registry.counter("mnemo_session_memory_builds_total",
                              "compressed session histories built (block-wise prefill, from scratch or continued)")),
      build_seconds_(registry.gauge("mnemo_session_memory_build_seconds_total",
                                    "seconds spent building compressed session histories")),
      routes_(registry.counter("mnemo_session_memory_routes_total",
                               "questions of episodic sessions routed to an episode's compressed history")),
      reclusters_(registry.counter("mnemo_session_memory_reclusters_total",
                                   "episodic sessions' histories re-clustered into episodes")),
      rebuilds_(registry.counter("mnemo_session_memory_rebuilds_total",
                                 "episode caches rebuilt from scratch because their episode changed")),
      silhouette_(registry.gauge("mnemo_session_memory_silhouette",
                                 "silhouette (cosine, -1 to 1) of the last clustering of an episodic session's "
                                 "history into episodes")),
      background_builds_(registry.counter("mnemo_session_memory_background_builds_total",
                                          "episode caches continued in the background while an older one served")) {
  bytes_gauge_ = &registry.gauge("mnemo_session_memory_bytes", "bytes of compressed session histories held");
  sessions_gauge_ = &registry.gauge("mnemo_session_memory_sessions", "sessions whose compressed history is held");
  bytes_gauge_->set_callback([this] { return double(bytes()); });
  sessions_gauge_->set_callback([this] { return double(sessions_held()); });
  episodes_gauge_ = &registry.gauge("mnemo_session_memory_episodes", "episodes of the episodic sessions loaded");
  episodes_gauge_->set_callback([this] { return double(episodes_held()); });
  resident_gauge_ = &registry.gauge("mnemo_session_memory_resident_tokens",
                                    "KV slots per layer of all compressed session histories held (episodes' caches each)");
  resident_gauge_->set_callback([this] { return double(resident_tokens()); });
  largest_gauge_ = &registry.gauge("mnemo_session_memory_largest_cache_tokens",
                                   "KV slots per layer of the largest compressed session history held (at most its "
                                   "budget + one block)");
  largest_gauge_->set_callback([this] { return double(largest_cache_tokens()); });
  if (opt_.background) catch_up_thread_ = std::thread([this] { catch_up_loop(); });
}

SessionMemory::~SessionMemory() {
  {
    std::lock_guard lock(catch_up_mu_);
    catch_up_stop_ = true;
    catch_up_queue_.clear();
  }
  catch_up_cv_.notify_all();
  if (catch_up_thread_.joinable()) catch_up_thread_.join();  // a build in flight finishes first
  bytes_gauge_->set_callback(nullptr);
  sessions_gauge_->set_callback(nullptr);
  episodes_gauge_->set_callback(nullptr);
  resident_gauge_->set_callback(nullptr);
  largest_gauge_->set_callback(nullptr);
}

int64_t SessionMemory::resident_tokens() const {
  std::lock_guard lock(mu_);
  int64_t n = 0;
  for (const auto& [_, e] : entries_) n += e.first->held;
  return n;
}

int64_t SessionMemory::largest_cache_tokens() const {
  std::lock_guard lock(mu_);
  int64_t n = 0;
  for (const auto& [_, e] : entries_) n = std::max(n, e.first->held);
  return n;
}

int64_t SessionMemory::episodes_held() const {
  std::lock_guard lock(mu_);
  int64_t n = 0;
  for (const auto& [_, count] : episode_count_) n += count;
  return n;
}

int64_t SessionMemory::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

int64_t SessionMemory::sessions_held() const {
  std::lock_guard lock(mu_);
  return int64_t(entries_.size());
}

void SessionMemory::drop(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  bytes_ -= int64_t(it->second.first->kv->size());
  lru_.erase(it->second.second);
  entries_.erase(it);
}

std::shared_ptr<SessionMemory::Entry> SessionMemory::held(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.second);
  return it->second.first;
}

void SessionMemory::forget(const std::string& session_id) {
  // Under build_mu_: a build in flight for the session finishes first (its
  // episodes object is in use).
  std::lock_guard build(build_mu_);
  drop(session_id);
  std::lock_guard lock(mu_);
  const std::string prefix = session_id + "#episode";
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->first.compare(0, prefix.size(), prefix) == 0) {
      bytes_ -= int64_t(it->second.first->kv->size());
      lru_.erase(it->second.second);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  episodic_.erase(session_id);
  episode_count_.erase(session_id);
}

void SessionMemory::keep(const std::string& session_id, std::shared_ptr<Entry> e) {
  std::lock_guard lock(mu_);
  keep_locked(session_id, std::move(e));
}

void SessionMemory::keep_locked(const std::string& session_id, std::shared_ptr<Entry> e) {
  const int64_t size = int64_t(e->kv->size());
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
                                                            std::span<const int32_t> prompt, uint64_t salt,
                                                            std::span<const engine::ChatMessage> messages) {
  if (config.policy == "full") return std::nullopt;
  const int64_t B = config.block_tokens;
  // Whole blocks of the prompt, at least one token left for the engine to compute.
  const int64_t target = (int64_t(prompt.size()) - 1) / B * B;
  if (target <= config.budget_tokens) return std::nullopt;

  std::lock_guard build_lock(build_mu_);
  if (config.policy == "episodic") return prepare_episodic(session_id, config, prompt, target, salt, messages);
  const auto e = build(session_id, config, prompt, target, salt,
                       [&] { return memory::compress::make_policy(config.policy); });
  return Start{e->kv, e->usage()};
}

std::shared_ptr<SessionMemory::Entry> SessionMemory::compress(const std::string& key, const MemoryConfig& config,
                                                               std::span<const int32_t> tokens, uint64_t salt,
                                                               const Entry* from,
                                                               std::unique_ptr<memory::compress::Policy> policy) {
  const auto t0 = Clock::now();
  const int64_t B = config.block_tokens, target = int64_t(tokens.size());
  engine::kv::KvConfig k = kv_;
  // Budget plus one block at the peak (uniform selection), and room for the
  // snapshot being continued; twice that against rounding to whole blocks.
  const int64_t slots = 2 * (config.budget_tokens + B + k.block_size);
  k.bytes_budget = (slots + k.block_size - 1) / k.block_size * k.layers * k.bytes_per_block();
  engine::kv::KvCacheManager cache(k);
  engine::kv::SeqId seq;
  int64_t done = 0;
  if (from) {
    const std::optional<engine::kv::SeqId> id = cache.import_sequence(*from->kv);
    if (!id) throw std::runtime_error("session memory: the previous compressed history does not fit its build cache");
    seq = *id;
    done = int64_t(from->tokens.size());
  } else {
    seq = cache.create(salt);
  }
  memory::compress::BlockPrefillOptions bo;
  bo.block_tokens = B;
  bo.layer_budget = memory::compress::uniform_budgets(k.layers, config.budget_tokens);
  // Uniform selection: every head keeps the budget, so the held history (and
  // the pool a response needs for it) never exceeds budget + one block.
  bo.head_wise = false;
  set_build_threads(opt_.threads);
  memory::compress::block_prefill(model_, cache, seq, tokens.subspan(size_t(done)), *policy, bo);

  auto e = std::make_shared<Entry>();
  e->config = config;
  e->salt = salt;
  e->tokens.assign(tokens.begin(), tokens.end());
  e->kv = std::make_shared<const std::vector<uint8_t>>(cache.export_sequence(seq));
  e->policy = std::move(policy);
  for (int64_t l = 0; l < k.layers; ++l) e->held = std::max(e->held, cache.length(seq, l));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  built_.inc();
  build_seconds_.inc(seconds);
  spdlog::info("session memory: {}: {} history tokens held in {} slots per layer by {} (budget {}, blocks of {}; {} "
               "tokens {}), {:.2f} s, snapshot of {} bytes",
               key, target, e->held, config.policy, config.budget_tokens, B, target - done,
               from ? "added to the previous build" : "from scratch", seconds, e->kv->size());
  return e;
}

std::shared_ptr<SessionMemory::Entry> SessionMemory::build(
    const std::string& key, const MemoryConfig& config, std::span<const int32_t> prompt, int64_t target,
    uint64_t salt, const std::function<std::unique_ptr<memory::compress::Policy>()>& fresh_policy,
    bool fresh_on_continue) {
  const int64_t B = config.block_tokens;
  std::shared_ptr<Entry> prev = held(key);
  const bool continues = prev && prev->config == config && prev->salt == salt && prev->policy &&
                         int64_t(prev->tokens.size()) <= target &&
                         std::equal(prev->tokens.begin(), prev->tokens.end(), prompt.begin());
  if (prev && !continues)
    spdlog::info("session memory: {}'s history changed (or its setting did): rebuilding from scratch", key);
  // Grown by less than a block since the last build: the engine computes the rest.
  if (continues && target - int64_t(prev->tokens.size()) < B) return prev;

  std::unique_ptr<memory::compress::Policy> policy;
  std::shared_ptr<const Entry> from;
  if (continues) {
    policy = fresh_on_continue ? fresh_policy() : std::move(prev->policy);  // prev is replaced below, or dropped if this fails
    from = prev;
    drop(key);  // its policy may have moved here: no later build may continue it
  } else {
    policy = fresh_policy();
  }
  const auto e = compress(key, config, prompt.first(size_t(target)), salt, from.get(), std::move(policy));
  keep(key, e);
  return e;
}

SessionEpisodes& SessionMemory::episodes_of(const std::string& session_id, const MemoryConfig& config) {
  {
    std::lock_guard lock(mu_);
    if (auto it = episodic_.find(session_id); it != episodic_.end()) return *it->second;
  }
  const int64_t layers = model_.config().num_layers;
  const int64_t layer = opt_.embedding_layer > 0 ? std::min(opt_.embedding_layer, layers) : (layers + 1) / 2;
  MakeEmbedder make = [this, layer](const std::string& kind) -> std::shared_ptr<ep::Embedder> {
    if (kind == "tfidf") return std::make_shared<ep::TfidfEmbedder>();
    if (kind != "model") throw std::invalid_argument("unknown embedder '" + kind + "'");
    if (!opt_.tokenize) throw std::runtime_error("no tokenizer for the model embedder");
    return std::make_shared<ep::HiddenStateEmbedder>(ep::engine_hidden_state(model_, layer), opt_.tokenize);
  };
  std::unique_ptr<SessionEpisodes> s;
  if (opt_.store) {
    try {
      if (auto j = opt_.store->get_session_episodes(session_id)) {
        s = std::make_unique<SessionEpisodes>(SessionEpisodes::restore(*j, make));
        spdlog::info("session memory: {}: episode index restored ({} windows, {} episodes, {} embedder)", session_id,
                     s->index().windows().size(), s->episodes(), s->embedder());
      }
    } catch (const std::exception& ex) {
      spdlog::warn("session memory: {}'s stored episode index not restored ({}): rebuilt from its history", session_id,
                   ex.what());
      s.reset();
    }
  }
  if (!s)
    s = std::make_unique<SessionEpisodes>(config.embedder, size_t(config.episodes), make,
                                          config.segmentation == "time" ? ep::EpisodeMethod::TimeChunks
                                                                        : ep::EpisodeMethod::KMeans);
  std::lock_guard lock(mu_);
  return *(episodic_[session_id] = std::move(s));
}

std::optional<SessionMemory::Start> SessionMemory::prepare_episodic(const std::string& session_id,
                                                                     const MemoryConfig& config,
                                                                     std::span<const int32_t> prompt, int64_t target,
                                                                     uint64_t salt,
                                                                     std::span<const engine::ChatMessage> messages) {
  SessionEpisodes& eps = episodes_of(session_id, config);
  const size_t before = eps.episodes();
  set_build_threads(opt_.threads);
  const SessionEpisodes::Sync sync = eps.sync(history_utterances(messages));
  if (sync.reset) {
    // The episodes were rebuilt from scratch: no episode's cache stands for them.
    for (int32_t e = 0; e < int32_t(kMaxEpisodes); ++e) drop(episode_key(session_id, e));
  }
  if (!sync.reason.empty()) {
    reclusters_.inc();
    silhouette_.set(double(sync.result.silhouette));
    std::string changed, kept;
    for (size_t e = 0; e < sync.result.changed.size(); ++e) {
      if (!sync.result.changed[e] && e < before && e < sync.result.overlap.size())
        kept += fmt::format("{}{} ({:.0f}% of representatives stayed, centroid cosine {:.3f})", kept.empty() ? "" : ", ",
                            e, 100 * sync.result.overlap[e], sync.result.centroid_cosine[e]);
      if (sync.result.changed[e]) {
        changed += (changed.empty() ? "" : ",") + std::to_string(e);
        const std::string key = episode_key(session_id, int32_t(e));
        if (held(key)) stale_.insert(key);
        drop(key);  // rebuilt when a question is next routed to it
      }
    }
    for (size_t e = sync.result.episodes; e < std::max(before, sync.result.changed.size()); ++e)
      drop(episode_key(session_id, int32_t(e)));
    spdlog::info("session memory: {}: re-clustered {} windows into {} episodes ({}; by {}; silhouette {:.3f}; embedder "
                 "{}); episodes changed: {}; kept with their caches: {}",
                 session_id, eps.index().windows().size(), sync.result.episodes, sync.reason,
                 ep::method_name(eps.method()), sync.result.silhouette, eps.embedder(),
                 changed.empty() ? "none" : changed, kept.empty() ? "none" : kept);
  }
  {
    std::lock_guard lock(mu_);
    episode_count_[session_id] = int64_t(eps.episodes());
  }
  const std::optional<std::string> question = question_text(messages);
  ep::Route route = eps.route(question.value_or(""));
  if (route.episode < 0) route = {0, 0.0f};
  routes_.inc();
  spdlog::info("session memory: {}: question routed to episode {} of {} (cosine {:.3f})", session_id, route.episode,
               eps.episodes(), route.cosine);
  if (opt_.store) {
    try {
      opt_.store->put_session_episodes(session_id, eps.state(), now_ms());
    } catch (const std::exception& ex) {
      spdlog::warn("session memory: {}'s episode index not stored: {}", session_id, ex.what());
    }
  }

  const std::string key = episode_key(session_id, route.episode);
  memory::compress::PolicyOptions po;
  if (eps.episodes() > 0 && opt_.tokenize) {
    // Bounded queries: each representative window gives an equal share of
    // kMaxPatchTokens (the patched policy attends with all of them every block).
    const std::vector<std::string> windows = eps.representative_texts(route.episode);
    const size_t share = windows.empty() ? 0 : kMaxPatchTokens / windows.size();
    for (const std::string& w : windows) {
      const std::vector<int32_t> t = opt_.tokenize(w);
      po.text.insert(po.text.end(), t.begin(), t.begin() + std::min(t.size(), share));
    }
  }
  // The representatives' mean logit, not EpiCache's max: with ~1k query
  // tokens the max rewards chance alignments and other episodes' slots
  // crowd out this one's (16k, 8 episodes, 4x: 73% -> 100% of full-KV
  // recall on the testbed; docs/compression.md).
  po.patched_reduce = engine::ScoreReduce::MeanLogit;

  std::shared_ptr<Entry> entry = held(key);
  if (entry && opt_.background && catch_up_serves(*entry, config, prompt, target, salt)) {
    // The held cache serves now (the engine computes the tokens it lacks in
    // full) and is continued in the background for the next question.
    const int64_t behind = target - int64_t(entry->tokens.size());
    const bool queued = schedule_catch_up({key, config, std::vector<int32_t>(prompt.begin(), prompt.begin() + target),
                                           salt, po, entry});
    spdlog::info("session memory: {}: served from its cache of {} tokens, {} behind the history; {}", key,
                 entry->tokens.size(), behind,
                 queued ? "continuing it in the background" : "a background build of it is already pending");
  } else {
    entry = build(key, config, prompt, target, salt, [&] {
      if (stale_.erase(key)) rebuilds_.inc();
      return episode_policy(po);
    }, /*fresh_on_continue=*/true);
  }
  Start out{entry->kv, entry->usage()};
  out.usage["episode"] = route.episode;
  out.usage["episodes"] = int64_t(eps.episodes());
  out.usage["route_cosine"] = route.cosine;
  return out;
}

}  // namespace mnemo::daemon::app
