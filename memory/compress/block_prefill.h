#pragma once
// Block-wise prefill under a fixed KV budget (EpiCache): the history goes
// in blocks of M_block tokens; after each block, every layer over its budget
// is ranked by the policy and compacted to it, so the sequence never holds
// much more than budget + one block, however long the history.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/model/model.h"
#include "memory/compress/policy.h"

namespace mnemo::memory::compress {

struct BlockPrefillOptions {
  int64_t block_tokens = 512;    // M_block
  std::vector<int64_t> layer_budget;  // slots per KV head, per layer (layer_budgets or uniform_budgets)
  bool head_wise = true;         // top budget x heads over a layer's flattened (head, slot) scores; else per head
};

struct BlockPrefillResult {
  int64_t peak_kv_bytes = 0;   // most KV bytes the sequence held, sampled after every append and every compaction
  int64_t final_kv_bytes = 0;  // blocks held x bytes per block, over layers
  std::vector<std::vector<int64_t>> kept;  // [layer][kv_head]: slots holding a token at the end
  std::vector<float> logits;               // [vocab] after the history's last token
  double prefill_seconds = 0;              // forward passes
  double scoring_seconds = 0;              // policy queries, rankings and selection
  double compaction_seconds = 0;           // KvCacheManager::compact
  int64_t compactions = 0;                 // blocks after which the cache was compacted
};

// Appends `history` to `seq` (which may already hold tokens) block by block:
// append, forward, commit; when some layer then exceeds its budget, the
// policy ranks every layer and each layer over budget is compacted to it.
// A policy that asks for block queries gets them just before they are
// appended (the block is forwarded in two parts around that). Tokens keep
// their true positions: later tokens continue after tokens(seq).
// Throws std::invalid_argument for block_tokens < 1, budgets not one per
// layer (unless the policy never evicts) or empty history, and
// std::runtime_error when the cache has no room for a block or a compaction.
BlockPrefillResult block_prefill(const engine::Model& model, engine::kv::KvCacheManager& cache, engine::kv::SeqId seq,
                                 std::span<const int32_t> history, Policy& policy, const BlockPrefillOptions& options);

// KV bytes the sequence holds now: whole blocks of every layer.
int64_t held_bytes(const engine::kv::KvCacheManager& cache, engine::kv::SeqId seq);

}  // namespace mnemo::memory::compress
