#include "engine/kv/prefix_index.h"

#include <algorithm>

#include "engine/kv/check.h"

namespace mnemo::engine::kv {

uint64_t default_block_hash(uint64_t parent, std::span<const int32_t> tokens, uint64_t salt) {
  // splitmix64 finaliser per word: cheap, and every input bit reaches every output bit.
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  uint64_t h = mix(parent ^ mix(salt + 0x51ed270b27ull));
  for (int32_t t : tokens) h = mix(h ^ uint64_t(uint32_t(t)));
  return mix(h ^ tokens.size());
}

int32_t PrefixIndex::find(uint64_t hash, ChainLink parent, std::span<const int32_t> tokens, uint64_t salt) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const Entry& e = entries_[it->second];
  bool same = e.salt == salt && e.parent == parent &&
              std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin(), tokens.end());
  return same ? it->second : -1;
}

void PrefixIndex::insert(int32_t block, uint64_t hash, ChainLink parent, std::span<const int32_t> tokens,
                         uint64_t salt) {
  MNEMO_KV_CHECK(!entries_[block].indexed, "block indexed twice");
  MNEMO_KV_CHECK(!contains_hash(hash), "hash already indexed");
  Entry& e = entries_[block];
  e = Entry{true, hash, salt, parent, std::vector<int32_t>(tokens.begin(), tokens.end())};
  by_hash_[hash] = block;
}

void PrefixIndex::erase(int32_t block) {
  Entry& e = entries_[block];
  MNEMO_KV_CHECK(e.indexed, "erasing a block that is not indexed");
  by_hash_.erase(e.hash);
  e = Entry{};
  ++generation_[block];
}

}  // namespace mnemo::engine::kv
