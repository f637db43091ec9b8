#pragma once
// Where a program's KV goes when it leaves the pool (TTL expiry, the deadlock
// guard, preemption) so its next turn restores it instead of prefilling:
// memory/tiers implements it; the engine only sees this interface.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace mnemo::engine {

class KvTier {
 public:
  struct Entry {
    std::vector<int32_t> tokens;  // the tokens whose K,V are in kv
    uint64_t salt = 0;            // the cache salt (tenant) they were computed under
    std::vector<uint8_t> kv;      // KvCacheManager::export_sequence bytes
    uint64_t program = 0;         // set by take(): whose entry it was (to put it back under)
  };
  virtual ~KvTier() = default;
  // May evict others (LRU) or refuse (false) when over budget.
  virtual bool put(uint64_t program, Entry e) = 0;
  // The entry of `program` if its tokens are a prefix of `tokens` (same salt),
  // else the longest such entry of any program; removed from the tier.
  virtual std::optional<Entry> take(uint64_t program, std::span<const int32_t> tokens, uint64_t salt) = 0;
  virtual int64_t bytes() const = 0;
};

}  // namespace mnemo::engine
