#pragma once
// Session memory (EpiCache-style, docs/protocol.md "memory"): a session may
// ask that its history be served from a compressed KV cache under a fixed
// token budget. Before a response, the history prefix of its prompt (whole
// blocks) is block-wise prefilled with the session's policy into a private
// cache, exported, and the response starts from that snapshot
// (engine::Request::start_kv); later responses continue the compressed
// sequence with the blocks added since. Snapshots are kept per session in
// memory under a byte budget, least recently used dropped first.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <string_view>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "daemon/metrics/registry.h"
#include "daemon/store/store.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/kv/kv_config.h"
#include "engine/model/model.h"
#include "memory/compress/policy.h"

namespace mnemo::daemon::app {

struct MemoryConfig {
  std::string policy = "full";  // full | streaming | snapkv | h2o | keydiff | episodic
  int64_t budget_tokens = 2048;  // KV slots per head the compressed history may hold, per layer
  int64_t block_tokens = 512;    // M_block of the block-wise prefill
  int64_t episodes = 4;          // episodic only
  std::string embedder = "model";  // episodic only: model (hidden states) | tfidf
  std::string segmentation = "kmeans";  // episodic only: kmeans (k-means of windows) | time (time-ordered chunks)
  bool operator==(const MemoryConfig&) const = default;
};

inline constexpr int64_t kMinMemoryBudget = 64;
inline constexpr int64_t kMaxMemoryBudget = 1 << 20;
inline constexpr int64_t kMinMemoryBlock = 16;
inline constexpr int64_t kMaxMemoryBlock = 8192;
inline constexpr int64_t kMaxEpisodes = 64;

// The "memory" object of session.create, checked: throws BadRequest naming
// the field ("memory.policy", "memory.budget_tokens", ...) for an unknown
// field or policy, a value out of bounds, or an embedder or a segmentation
// for a policy other than episodic.
MemoryConfig parse_memory_config(const nlohmann::ordered_json& j);
nlohmann::ordered_json to_json(const MemoryConfig& c);

class SessionEpisodes;

struct SessionMemoryOptions {
  int64_t max_bytes = int64_t(256) << 20;  // all sessions' snapshots together
  int threads = 1;                         // threads of a build (kernels and OpenMP)
  // episodic: the layer whose mean hidden state embeds a window (0: the
  // middle one, as /v1/embeddings), and the served tokenizer (text as text:
  // no special tokens, special-token text not parsed).
  int64_t embedding_layer = 0;
  std::function<std::vector<int32_t>(std::string_view)> tokenize;
  store::Store* store = nullptr;  // episodic: episode indexes persist here (nullptr: in memory only)
  // episodic: a held episode cache behind the prompt by at least a block
  // and at most its budget serves the response as it is (the engine computes
  // the tokens it lacks in full) and is continued on a background thread, so
  // a question waits for a build only the first time its episode is used or
  // when its cache fell further behind (EpiCache's online update: the old
  // caches serve meanwhile). false: every response waits for its build.
  bool background = true;
  size_t background_queue = 16;  // continuations waiting at most; more are dropped (the next question builds)
};

class SessionMemory {
 public:
  // kv: the engine's cache shape (layers, heads, head_dim, block size).
  SessionMemory(const engine::Model& model, engine::kv::KvConfig kv, SessionMemoryOptions opt,
                metrics::Registry& registry);
  ~SessionMemory();

  struct Start {
    std::shared_ptr<const std::vector<uint8_t>> kv;  // the snapshot the response starts from
    // {policy, history_tokens (held), budget_tokens, compressed_tokens};
    // episodic adds {episode, episodes, route_cosine}.
    nlohmann::ordered_json usage;
  };
  // The compressed history to start a response on this prompt from; nullopt
  // when the policy keeps everything or the history fits the budget (the
  // prefix cache serves it then). Runs the block-wise prefill on the calling
  // thread (a worker): call it off the network threads and the engine loop.
  // Throws std::runtime_error when the build fails.
  // episodic: `messages` (the prompt's conversation) feed the session's
  // episode index; its last user message is routed to an episode and the
  // response starts from that episode's cache (built or continued now; the
  // other episodes' caches when a question is routed to them).
  std::optional<Start> prepare(const std::string& session_id, const MemoryConfig& config,
                               std::span<const int32_t> prompt, uint64_t salt,
                               std::span<const engine::ChatMessage> messages = {});
  // The session is gone: its snapshots and episodes too.
  void forget(const std::string& session_id);

  int64_t bytes() const;
  int64_t sessions_held() const;
  int64_t episodes_held() const;  // episodes of the episodic sessions whose index is loaded
  // KV slots per layer (the longest layer of each) of the compressed caches
  // held: all together, and the largest one (each at most budget + one block).
  int64_t resident_tokens() const;
  int64_t largest_cache_tokens() const;

 private:
  // One session's (or episode's) compressed history. Immutable once kept, but
  // for its policy (h2o's accumulated mass belongs to the sequence), which
  // only the next build, under build_mu_, takes over.
  struct Entry {
    MemoryConfig config;
    uint64_t salt = 0;
    std::vector<int32_t> tokens;  // the prompt prefix the snapshot stands for
    std::shared_ptr<const std::vector<uint8_t>> kv;
    std::unique_ptr<memory::compress::Policy> policy;
    int64_t held = 0;  // slots of the longest layer
    nlohmann::ordered_json usage() const;
  };
  // A held episode cache to continue in the background up to `tokens`.
  struct CatchUp {
    std::string key;
    MemoryConfig config;
    std::vector<int32_t> tokens;
    uint64_t salt = 0;
    memory::compress::PolicyOptions policy;  // the episode's patched queries
    std::shared_ptr<const Entry> from;       // the cache it continues
  };
  static std::unique_ptr<memory::compress::Policy> episode_policy(const memory::compress::PolicyOptions& po);
  // Whether `held` can serve prompt[0, target) now and be continued later:
  // same setting and salt, a prefix of the prompt, behind by a block or more
  // and by no more than the budget.
  static bool catch_up_serves(const Entry& held, const MemoryConfig& config, std::span<const int32_t> prompt,
                              int64_t target, uint64_t salt);
  // Queues a continuation; false when one for the key is pending or the queue is full.
  bool schedule_catch_up(CatchUp job);
  void catch_up_loop();
  void catch_up(const CatchUp& job);
  // Block-wise prefill of `tokens` (continuing `from`'s snapshot when given)
  // in a private cache of budget + one block; the entry is not kept.
  std::shared_ptr<Entry> compress(const std::string& key, const MemoryConfig& config, std::span<const int32_t> tokens,
                                  uint64_t salt, const Entry* from, std::unique_ptr<memory::compress::Policy> policy);
  void keep_locked(const std::string& key, std::shared_ptr<Entry> e);
  // Snapshots are kept under a key: the session id, or for an episodic
  // session one key per episode (episode_key).
  void keep(const std::string& key, std::shared_ptr<Entry> e);
  void drop(const std::string& key);
  std::shared_ptr<Entry> held(const std::string& key);  // and marks it used
  // The compressed history of prompt[0, target) under `key`: the held one
  // when it already covers all but less than a block, else continued from it
  // or built from scratch (with fresh_policy()), and kept. A continued build
  // keeps its policy's state, or takes fresh_policy() when fresh_on_continue
  // (a stateless policy whose queries may have changed: an episode's
  // representatives after a re-cluster that kept its cache).
  std::shared_ptr<Entry> build(const std::string& key, const MemoryConfig& config, std::span<const int32_t> prompt,
                               int64_t target, uint64_t salt,
                               const std::function<std::unique_ptr<memory::compress::Policy>()>& fresh_policy,
                               bool fresh_on_continue = false);
  std::optional<Start> prepare_episodic(const std::string& session_id, const MemoryConfig& config,
                                        std::span<const int32_t> prompt, int64_t target, uint64_t salt,
                                        std::span<const engine::ChatMessage> messages);
  SessionEpisodes& episodes_of(const std::string& session_id, const MemoryConfig& config);

  const engine::Model& model_;
  engine::kv::KvConfig kv_;
  SessionMemoryOptions opt_;
  metrics::Counter& built_;
  metrics::Gauge& build_seconds_;
  metrics::Gauge* bytes_gauge_ = nullptr;
  metrics::Gauge* sessions_gauge_ = nullptr;
  metrics::Gauge* episodes_gauge_ = nullptr;
  metrics::Gauge* resident_gauge_ = nullptr;
  metrics::Gauge* largest_gauge_ = nullptr;
  metrics::Counter& routes_;
  metrics::Counter& reclusters_;
  metrics::Counter& rebuilds_;
  metrics::Gauge& silhouette_;  // the last clustering's, of whichever session re-clustered last
  std::mutex build_mu_;  // one build at a time: each takes the model's threads
  mutable std::mutex mu_;
  std::list<std::string> lru_;  // front: most recently used
  std::unordered_map<std::string, std::pair<std::shared_ptr<Entry>, std::list<std::string>::iterator>> entries_;
  int64_t bytes_ = 0;
  // episodic sessions' indexes (loaded from the store on first use); under mu_
  // for the map, build_mu_ for their contents.
  std::unordered_map<std::string, std::unique_ptr<SessionEpisodes>> episodic_;
  std::unordered_map<std::string, int64_t> episode_count_;  // under mu_ (the gauge reads it; episodic_'s contents are build_mu_'s)
  std::set<std::string> stale_;  // episode keys whose cache a re-clustering dropped (under build_mu_)
  metrics::Counter& background_builds_;
  // The background continuations (one thread; its own lock, never held with build_mu_).
  std::mutex catch_up_mu_;
  std::condition_variable catch_up_cv_;
  std::deque<CatchUp> catch_up_queue_;
  std::set<std::string> catch_up_keys_;  // queued or running
  bool catch_up_stop_ = false;
  std::thread catch_up_thread_;  // last: started when everything above exists
};

}  // namespace mnemo::daemon::app
