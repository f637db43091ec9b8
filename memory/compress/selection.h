#pragma once
// Which slots of one layer survive a compaction, given per-head scores.
// Pure functions: no engine, no cache.
#include <cstdint>
#include <span>
#include <vector>

namespace mnemo::memory::compress {

// scores[kv_head][slot] of one layer; higher keeps. -infinity marks a slot
// that holds nothing (a hole) and is never kept.
using HeadScores = std::vector<std::vector<float>>;
// keep[kv_head]: strictly increasing slots, the shape KvCacheManager::compact takes.
using KeepLists = std::vector<std::vector<int32_t>>;

// Top `budget_total` over the flattened (head, slot) scores of the layer
// (EpiCache, Ada-KV): heads may keep different counts. `protect[head]` lists
// slots ranked above every unprotected one (an observation window, sinks);
// empty span = none. Ties prefer the more recent slot (higher index), then
// the lower head. A layer holding at most budget_total slots keeps them all.
// Throws std::invalid_argument on NaN scores, a negative budget, or protect
// lists whose head count or slots do not match the scores.
KeepLists select_headwise(const HeadScores& scores, int64_t budget_total,
                          std::span<const std::vector<int32_t>> protect = {});

// The top `budget_per_head` of each head on its own (SnapKV, H2O as
// published), with the same protection, tie and hole rules.
KeepLists select_uniform(const HeadScores& scores, int64_t budget_per_head,
                         std::span<const std::vector<int32_t>> protect = {});

}  // namespace mnemo::memory::compress
