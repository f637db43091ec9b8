#pragma once
// What eviction policies measure on a sequence's cached KV: the attention a
// set of query tokens gives each cached slot (EpiCache's and SnapKV's score),
// and how much each layer's keys depend on long-range attention (the input
// to layer budgets).
#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/model/model.h"

namespace mnemo::engine {

enum class ScoreReduce {
  Max,  // max over query positions and the query heads of the KV group (EpiCache, SnapKV)
  Sum,  // summed over them (H2O's accumulated attention mass)
  // The mean over them of the pre-softmax logit q.k / sqrt(d), then a
  // softmax over the slots: attention from the queries' average direction.
  // Many queries about one topic vote together, so a slot's rank follows
  // the topic, not the one query that happens to align with it best (which
  // is what Max rewards when queries are many and slots are noisy).
  MeanLogit,
};

// scores[layer][kv_head][slot], one entry per slot of the layer
// (cache.length(seq, layer)); a slot in a hole scores -infinity.
using SlotScores = std::vector<std::vector<std::vector<float>>>;

// Runs `queries` as if appended to `seq` (true positions continuing after
// its tokens, attending causally to the cache and to each other) without
// keeping their K,V or changing the cache, and returns, per cached slot, the
// attention weight it receives, the softmax taken over the cached slots only
// (the queries' own keys excluded), reduced over queries and query heads.
// Holes are excluded from every softmax (the queries' forward too). A model
// with a sliding window keeps it while the sequence is uncompacted, as the
// forward pass does: slots older than every query's window score 0.
// Cost per layer: two GEMMs of m x (slots + m) x head_dim per query head,
// and a [m, slots + m] scratch buffer.
// Throws std::invalid_argument for empty queries, ids outside the vocabulary,
// a cache shaped unlike the model, or appended tokens not yet written.
SlotScores score_slots(const Model& model, const kv::KvCacheManager& cache, kv::SeqId seq,
                       std::span<const int32_t> queries, ScoreReduce reduce = ScoreReduce::Max);

// Per layer, the mean cosine similarity (over tokens and KV heads) between the
// keys computed on `text` with full causal attention and with every layer's
// attention restricted to the first `sinks` tokens plus the last `window`
// (sigma_l of EpiCache's layer budgets: near 1 means the layer does not need
// distant tokens). A query at position p sees key j iff j <= p and (j < sinks
// or p - j < window), in both runs also within the model's own sliding
// window. Keys are compared after RoPE. sigma_0 is always 1 (up to rounding):
// layer 0's keys are computed before any attention.
// Throws std::invalid_argument for empty text, ids outside the vocabulary,
// sinks < 0 or window < 1.
std::vector<double> layer_key_similarity(const Model& model, std::span<const int32_t> text, int64_t sinks,
                                         int64_t window);

}  // namespace mnemo::engine
