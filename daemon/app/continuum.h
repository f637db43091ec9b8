#pragma once
// The daemon side of Continuum: places each response in its agent program
// (ProgramTracker), tells the engine whether to hold a turn's KV, and when a
// turn ends calling a tool asks the TTL policy how long to keep that KV
// (Engine::retain). Feeds the policy's statistics (tool durations, turn
// counts, queueing delay of evicted turns, prefill speed) and keeps them in
// the store across restarts. Thread-safe: called from the worker threads.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "daemon/app/program_tracker.h"
#include "daemon/app/app_metrics.h"
#include "engine/serving/engine.h"
#include "memory/ttl/reload_model.h"
#include "memory/ttl/ttl_policy.h"

namespace mnemo::daemon::store {
class Store;
}

namespace mnemo::daemon::app {

struct ResponseOutcome;

struct ContinuumOptions {
  memory::ttl::RetentionMode mode;
  ProgramTrackerOptions tracker;     // block_size: the engine's KV block
  double save_interval_seconds = 1;  // the statistics are written at most this often
  // The host tier (0: none): a turn's KV that fits it is reloaded by a copy,
  // whose speed the engine measures, instead of a prefill.
  int64_t host_tier_bytes = 0;
  int64_t kv_bytes_per_token = 0;
};

class Continuum {
 public:
  // store may be null (nothing persisted). Loads the saved statistics.
  Continuum(ContinuumOptions opt, engine::Engine& engine, store::Store* store, AppMetrics& metrics);
  ~Continuum();  // saves what is unsaved
  Continuum(const Continuum&) = delete;
  Continuum& operator=(const Continuum&) = delete;

  // A response is about to be submitted: its program, and what the engine
  // should do with its KV (Request::program).
  TurnStart begin_turn(const ProgramRef& ref, std::span<const int32_t> prompt, uint64_t salt, bool may_call_tools);
  engine::ProgramTurn engine_turn(const TurnStart& t) const;
  // Whether end_turn needs the prompt and generated tokens (inferred programs).
  bool wants_tokens(const TurnStart& t) const { return t.source == ProgramSource::Inferred; }
  // The response is done: keep its KV for the TTL the policy picks (or
  // release it), update the statistics. Never throws.
  void end_turn(const TurnStart& t, const ResponseOutcome& o, const ProgramRef& ref, std::span<const int32_t> prompt,
                std::span<const int32_t> generated);

  // WebSocket program.begin / program.end, tool.start / tool.end.
  void program_begun(const std::string& key);
  void program_ended(const std::string& key);
  void tool_started(const std::string& call_id, const std::string& name, const std::string& program_key);
  // by_daemon: mnemod ran the tool itself (server_tools), so the time is exact.
  void tool_ended(const std::string& call_id, bool by_daemon = false);

  // Writes the statistics now if anything changed since the last write.
  void save();
  const memory::ttl::TtlPolicy& policy() const { return policy_; }
  const ProgramTracker& tracker() const { return tracker_; }
  static constexpr const char* kStateName = "ttl";

 private:
  void load();
  // Reload(r): seconds to get `tokens` of KV back once dropped, and how.
  double reload_seconds(int64_t tokens, const char*& how) const;
  void program_finished(uint64_t program, int turns, const char* how);
  void mark_dirty();
  void saver_loop();

  ContinuumOptions opt_;
  engine::Engine& engine_;
  store::Store* store_;
  memory::ttl::TtlPolicy policy_;
  memory::ttl::ReloadModel reload_;
  ProgramTracker tracker_;
  metrics::Histogram& ttl_seconds_;

  std::atomic<int64_t> policy_ns_{0};  // in begin_turn / end_turn
  std::atomic<int64_t> saved_us_{0};   // predicted prefill of previous-turn KV that later turns found

  std::mutex save_mu_;
  std::condition_variable save_cv_;
  bool dirty_ = false, stopping_ = false;
  std::thread saver_;
};

}  // namespace mnemo::daemon::app
