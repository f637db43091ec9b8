#pragma once
// The engine as a service: thread-safe submit/cancel, a step loop on its own
// thread (schedule, run one batched forward, sample and stream), and a clean
// shutdown that ends every stream with a terminal event.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "engine/model/model.h"
#include "engine/serving/retention.h"
#include "engine/serving/scheduler.h"
#include "engine/tokenizer/tokenizer.h"

namespace mnemo::engine {

struct EngineOptions {
  SchedulerOptions scheduler;
  int64_t max_queued = 4096;  // submits beyond this many live requests are refused
  int threads = 0;  // kernel threads of the step loop; 0: the constructing thread's setting
  // The paged KV pool (K and V of all layers); its pages are committed as
  // blocks are first used. kv_cache_tokens > 0 sizes it in tokens instead.
  int64_t kv_cache_bytes = int64_t(512) << 20;
  int64_t kv_cache_tokens = 0;
  int64_t kv_block_size = 16;
  // bf16: half the bytes per token (twice the tokens in kv_cache_bytes, half
  // what decode attention reads); f32: the forward pass's values exactly.
  kernels::KvDType kv_dtype = kernels::KvDType::BF16;
  RetentionOptions retention;  // agent programs' KV across tool calls (Continuum)
};

struct RequestHandle {
  RequestId id = 0;
  std::shared_ptr<TokenStream> stream;
};

struct EngineCounters {
  int64_t steps = 0;
  double forward_seconds = 0;  // inside Model::forward_batch
  double step_seconds = 0;     // whole steps, scheduling and sampling included
  // Inside steps: Scheduler::schedule (ordering, admission, preemption, the
  // deadlock guard). Between steps: the retention bookkeeping (expiries,
  // retain calls). Both without host-tier copies (RetentionCounters).
  double schedule_seconds = 0;
  double retention_seconds = 0;
  SchedulerCounters scheduler;
  kv::PoolStats kv;  // of layer 0 (all layers alike while nothing is compacted)
  int64_t running = 0, waiting = 0;
  RetentionCounters retention;
};

class Engine {
 public:
  // model and tokenizer must outlive the engine.
  Engine(const Model& model, const Tokenizer& tok, EngineOptions opt = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Never blocks on generation. A request that can never run (bad sampling
  // parameters, larger than the KV capacity, queue full) gets an Error event.
  RequestHandle submit(Request req);
  void cancel(RequestId id);
  // After a turn submitted with program.hold_after finishes, its KV stays
  // parked under its program: retain(p, s) keeps it s more seconds (then it
  // moves to the tier if one is set, else goes back to the prefix cache's
  // LRU); retain(p, 0) does that now. The next turn of p that is admitted
  // reuses the parked blocks (zero recomputed tokens) and ends the parking.
  // Thread-safe; takes effect on the loop thread.
  void retain(uint64_t program, double seconds);
  // Stops the loop; live requests end with Done("shutdown"). Idempotent.
  void shutdown();
  EngineCounters counters() const;
  // Tokens the KV pool holds; a request needing more is refused.
  int64_t kv_capacity_tokens() const;
  // K and V of one token in every layer.
  int64_t kv_bytes_per_token() const;
  // Runs f on the step loop's thread between steps (the KV cache is only
  // touched there) and waits for it. For inspection and tests.
  void inspect_kv(const std::function<void(const kv::KvCacheManager&)>& f);

 private:
  void loop();
  void drain_inbox();
  void publish_counters();
  void step();
  void finish(Sequence& s, std::string reason);
  void emit_token(Sequence& s, int32_t token, std::optional<TokenLogprobs> logprobs = std::nullopt);
  // Returns false when the sequence finished.
  bool sample(Sequence& s, std::span<float> row);

  const Model& model_;
  const Tokenizer& tok_;
  EngineOptions opt_;
  kv::KvCacheManager cache_;
  Retention retention_;  // before scheduler_, which points at it
  Scheduler scheduler_;
  std::vector<int32_t> stop_ids_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::vector<RequestId> cancels_;
  std::vector<std::pair<uint64_t, double>> retains_;
  std::vector<std::function<void()>> tasks_;
  bool stopping_ = false;
  RequestId next_id_ = 1;
  int64_t live_ = 0;
  EngineCounters counters_;

  std::map<RequestId, std::unique_ptr<Sequence>> seqs_;  // loop thread only
  std::thread thread_;
};

}  // namespace mnemo::engine
