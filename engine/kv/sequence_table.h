#pragma once
// What the cache knows about one sequence. Internal to engine/kv.
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/kv/prefix_index.h"

namespace mnemo::engine::kv {

// A range of slots of one KV head that holds nothing (see KvCacheManager::hole).
// Stored as {0, 0} when empty.
struct Hole {
  int64_t begin = 0;
  int64_t end = 0;
  bool empty() const { return begin >= end; }
  bool contains(int64_t slot) const { return slot >= begin && slot < end; }
  auto operator<=>(const Hole&) const = default;
};

// A layer's own table, created the first time a compaction touches the layer.
struct LayerTable {
  std::vector<int32_t> blocks;
  int64_t length = 0;                           // slots in use, same for every head
  std::vector<std::vector<int32_t>> positions;  // [kv_heads][length]: original token position, -1 in the hole
  std::vector<Hole> holes;                      // [kv_heads]: at most one per head, after an uneven compaction
};

struct SequenceTable {
  uint64_t salt = 0;
  std::vector<int32_t> tokens;        // every appended token id, in order
  std::vector<int32_t> shared;        // table of the layers without their own; slot i holds token i
  std::vector<std::optional<LayerTable>> own;  // [layers]
  int64_t committed = 0;              // tokens whose K,V every layer holds
  bool compacted = false;             // content no longer follows `tokens`: never indexed again
  // Per full block of `shared` that has been offered to the index: its chain
  // hash and the block standing for it in the chain (ours, or an identical
  // one that was indexed first).
  std::vector<uint64_t> hashes;
  std::vector<ChainLink> chain;

  int64_t length(int64_t layer) const {
    return own[layer] ? own[layer]->length : int64_t(tokens.size());
  }
  const std::vector<int32_t>& blocks(int64_t layer) const {
    return own[layer] ? own[layer]->blocks : shared;
  }
  // Which layers read `shared`.
  std::vector<bool> shared_layers() const {
    std::vector<bool> use(own.size());
    for (size_t l = 0; l < own.size(); ++l) use[l] = !own[l].has_value();
    return use;
  }
  bool any_shared_layer() const {
    for (const auto& o : own)
      if (!o) return true;
    return false;
  }
};

// Calls fn(layer, block) for every table entry, i.e. every reference the
// sequence holds.
template <class Fn>
void for_each_entry(const SequenceTable& t, Fn&& fn) {
  for (size_t l = 0; l < t.own.size(); ++l)
    for (int32_t b : t.blocks(int64_t(l))) fn(int64_t(l), b);
}

}  // namespace mnemo::engine::kv
