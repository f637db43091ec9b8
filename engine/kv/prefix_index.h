#pragma once
// The prefix index: chain hash of a full block -> the block holding it. Every
// hit is verified against the stored token ids, the tenant salt and the
// parent block (id and generation), so a hash collision can never hand a
// sequence somebody else's KV.
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/kv/kv_config.h"

namespace mnemo::engine::kv {

// A block as a parent in the chain: a block id is only meaningful together
// with the generation it had when the child was indexed; eviction bumps it.
struct ChainLink {
  int32_t block = -1;
  uint32_t generation = 0;
  bool operator==(const ChainLink&) const = default;
};

class PrefixIndex {
 public:
  explicit PrefixIndex(int32_t num_blocks) : entries_(num_blocks), generation_(num_blocks, 0) {}

  // The block indexed under `hash` whose content is exactly `tokens` after
  // `parent` for `salt`, or -1.
  int32_t find(uint64_t hash, ChainLink parent, std::span<const int32_t> tokens, uint64_t salt) const;
  bool contains_hash(uint64_t hash) const { return by_hash_.count(hash) != 0; }
  bool indexed(int32_t block) const { return entries_[block].indexed; }
  ChainLink link(int32_t block) const { return {block, generation_[block]}; }
  uint64_t hash_of(int32_t block) const { return entries_[block].hash; }

  void insert(int32_t block, uint64_t hash, ChainLink parent, std::span<const int32_t> tokens, uint64_t salt);
  // Forgets the block's content (evicted, reused or rewritten by compaction).
  void erase(int32_t block);
  size_t size() const { return by_hash_.size(); }

 private:
  struct Entry {
    bool indexed = false;
    uint64_t hash = 0;
    uint64_t salt = 0;
    ChainLink parent;
    std::vector<int32_t> tokens;
  };
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> generation_;
};

}  // namespace mnemo::engine::kv
