#pragma once
// EpiCache on a testbed conversation: windows of utterances embedded by the
// model's own hidden states, FAISS k-means into episodes, one cache per
// episode compressed by block-wise prefill with the `patched` policy scored by
// that episode's representative windows, and each question answered from the
// cache of the episode it is routed to.
#include <cstdint>
#include <string>
#include <vector>

#include "bench/fidelity/conversation.h"
#include "bench/fidelity/recall.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/model/attention_scores.h"
#include "engine/model/model.h"

namespace mnemo::bench::fidelity {

struct EpisodicOptions {
  size_t episodes = 4;
  size_t window = 4;        // utterances per window
  int64_t embed_layer = 2;  // residual stream after this many layers
  int64_t block = 512;
  bool head_wise = false;
  std::vector<int64_t> layer_budget;  // slots per KV head, per layer, of each episode's cache
  engine::ScoreReduce reduce = engine::ScoreReduce::MeanLogit;  // how representative queries score slots
};

struct EpisodicResult {
  RecallResult recall;
  double routed_to_topic = 0;  // share of questions routed to an episode whose windows are mostly of the fact's topic
  // Where the answers went: the fact's value slot (layer 1: where the
  // testbed keeps a fact) held by the routed cache, or by some other cache.
  int64_t value_in_routed = 0, value_elsewhere = 0;
  // Wrong answers whose value slot the routed cache held (neither eviction nor routing lost them).
  int64_t wrong_with_value = 0;
  // Per episode: the topic mix of its windows (topic -> tokens) and its facts' value slots kept.
  std::vector<std::string> episode_mix;
  float silhouette = 0;
  int64_t peak_kv_bytes = 0;   // largest peak of one episode's cache while it was built
  int64_t held_kv_bytes = 0;   // all episode caches together at the end
  double embed_seconds = 0, cluster_seconds = 0, prefill_seconds = 0, route_seconds = 0;
};

// The caches are created in `kv` and freed before returning.
EpisodicResult run_episodic(const engine::Model& model, engine::kv::KvCacheManager& kv, const Conversation& c,
                            const EpisodicOptions& o);

}  // namespace mnemo::bench::fidelity
