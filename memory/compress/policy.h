#pragma once
// An eviction policy ranks a sequence's cached slots; the block-wise prefill
// driver (block_prefill.h) asks it when to look at which queries and which
// slots to keep, then selects and compacts.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/model/attention_scores.h"
#include "engine/model/model.h"

namespace mnemo::memory::compress {

// The sequence under compression, and the budgets (slots per KV head, per
// layer) the driver will cut every layer to.
struct CacheView {
  const engine::Model& model;
  const engine::kv::KvCacheManager& cache;
  engine::kv::SeqId seq;
  std::span<const int64_t> budgets;
};

// One layer's ranking: scores[kv_head][slot], higher keeps (the driver sets
// holes to -infinity); protect[kv_head] lists slots kept whatever their
// score (sinks, an observation window, a recent window); empty = none.
struct LayerScores {
  std::vector<std::vector<float>> scores;
  std::vector<std::vector<int32_t>> protect;
};

// Stateful policies (h2o's accumulated mass, snapkv's last observation)
// belong to one sequence: use one object per sequence being compressed.
class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  // False for a policy that never evicts (full): the driver never compacts.
  virtual bool evicts() const { return true; }
  // How many of a block's last tokens (of block_tokens) the policy wants as
  // queries over the cache as it stands just before they are appended: their
  // true positions and causal view, as in a one-pass prefill. 0 for none.
  virtual int64_t block_queries(int64_t block_tokens) const {
    (void)block_tokens;
    return 0;
  }
  // True when those queries are wanted for every block (accumulated
  // attention), false when only for a block a compaction follows.
  virtual bool observes_every_block() const { return false; }
  // Called with the block's query tokens before they are appended (only when
  // the sequence already holds tokens).
  virtual void observe(const CacheView& view, std::span<const int32_t> queries) {
    (void)view;
    (void)queries;
  }
  // Rankings of every layer; called after a block is committed when some
  // layer holds more than its budget.
  virtual std::vector<LayerScores> score(const CacheView& view) = 0;
};

struct PolicyOptions {
  int64_t sinks = 128;    // streaming: first tokens by position always kept (at most half a layer's budget)
  int64_t window = 64;    // snapkv: observation window, the block's last tokens
  int64_t recent = -1;    // h2o: recent window in tokens; -1 = half the layer's budget
  std::vector<int32_t> instruction;  // patched: queries = instruction followed by text
  std::vector<int32_t> text;
  // patched: how the queries' attention is reduced per slot. Max is
  // EpiCache's; MeanLogit ranks by the queries' average direction (see
  // engine::ScoreReduce), which keeps an episode's topic better when its
  // representative text is long (docs/compression.md).
  engine::ScoreReduce patched_reduce = engine::ScoreReduce::Max;
};

// "full", "streaming", "snapkv", "h2o", "keydiff", "patched".
std::span<const std::string_view> policy_names();
// Throws std::invalid_argument for an unknown name, listing the known ones.
std::unique_ptr<Policy> make_policy(std::string_view name, const PolicyOptions& options = {});

// Original token position of every slot of one head (slot i = token i for
// an uncompacted layer; -1 in the head's hole).
std::vector<int32_t> slot_positions(const engine::kv::KvCacheManager& cache, engine::kv::SeqId seq, int64_t layer,
                                    int64_t head);

}  // namespace mnemo::memory::compress
