#pragma once
// The policies behind make_policy(), declared for callers that need more
// than the interface (the episode feature sets the patched queries; tests
// read H2O's accumulated mass). One source file each.
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/model/attention_scores.h"
#include "memory/compress/policy.h"

namespace mnemo::memory::compress {

// Never evicts: the baseline every compressed cache is measured against.
class FullPolicy final : public Policy {
 public:
  std::string_view name() const override { return "full"; }
  bool evicts() const override { return false; }
  std::vector<LayerScores> score(const CacheView& view) override;
};

// StreamingLLM: the first `sinks` tokens by original position (at most half
// a layer's budget) and the most recent ones; no queries.
class StreamingPolicy final : public Policy {
 public:
  explicit StreamingPolicy(int64_t sinks) : sinks_(sinks) {}
  std::string_view name() const override { return "streaming"; }
  std::vector<LayerScores> score(const CacheView& view) override;

 private:
  int64_t sinks_;
};

// SnapKV: the last `window` tokens of the block attend (max over queries and
// the query heads of a group) to every slot cached before them; the window
// itself is always kept.
class SnapKvPolicy final : public Policy {
 public:
  explicit SnapKvPolicy(int64_t window) : window_(window) {}
  std::string_view name() const override { return "snapkv"; }
  int64_t block_queries(int64_t block_tokens) const override;
  void observe(const CacheView& view, std::span<const int32_t> queries) override;
  std::vector<LayerScores> score(const CacheView& view) override;

 private:
  int64_t window_;
  engine::SlotScores observed_;  // of the slots before the window; empty until observed
};

// H2O: attention mass accumulated per original token position over every
// block (each block's tokens as queries over the cache before it, summed),
// heavy hitters plus a recent window.
class H2oPolicy final : public Policy {
 public:
  explicit H2oPolicy(int64_t recent) : recent_(recent) {}
  std::string_view name() const override { return "h2o"; }
  int64_t block_queries(int64_t block_tokens) const override { return block_tokens; }
  bool observes_every_block() const override { return true; }
  void observe(const CacheView& view, std::span<const int32_t> queries) override;
  std::vector<LayerScores> score(const CacheView& view) override;
  // Accumulated mass of a token in one layer and KV head; 0 when never seen
  // or no longer cached.
  double mass(int64_t layer, int64_t head, int32_t position) const;

 private:
  int64_t recent_;
  std::vector<std::vector<std::unordered_map<int32_t, double>>> mass_;  // [layer][head]: position -> mass
};

// KeyDiff: keys least like the layer-head's mean normalised key rank
// highest (score = -cos(key, mean)); no queries.
class KeyDiffPolicy final : public Policy {
 public:
  std::string_view name() const override { return "keydiff"; }
  std::vector<LayerScores> score(const CacheView& view) override;
};

// EpiCache's patched prefill: the queries are an instruction followed by a
// given text (an episode's representative segments), set by the caller.
class PatchedPolicy final : public Policy {
 public:
  PatchedPolicy(std::vector<int32_t> instruction, std::vector<int32_t> text,
                engine::ScoreReduce reduce = engine::ScoreReduce::Max);
  std::string_view name() const override { return "patched"; }
  void set_queries(std::vector<int32_t> instruction, std::vector<int32_t> text);
  std::span<const int32_t> queries() const { return queries_; }
  // Throws std::logic_error while no queries are set.
  std::vector<LayerScores> score(const CacheView& view) override;

 private:
  std::vector<int32_t> queries_;
  engine::ScoreReduce reduce_;
};

}  // namespace mnemo::memory::compress
