#pragma once
// Host-memory tier for programs' KV (Continuum's offload on expiry): one
// entry per program under a byte budget, least recently used evicted first.
// Thread-safe: the engine's loop puts and takes, the daemon reads bytes().
#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>

#include "engine/serving/kv_tier.h"

namespace mnemo::memory::tiers {

class HostTier : public engine::KvTier {
 public:
  explicit HostTier(int64_t budget_bytes);

  // Replaces the program's older entry; evicts least recently used entries
  // to make room; false (nothing stored) when the entry alone exceeds the budget.
  bool put(uint64_t program, Entry e) override;
  // Only entries whose salt matches and whose tokens are a verified prefix of
  // `tokens`: the program's own first, else the longest of any program.
  std::optional<Entry> take(uint64_t program, std::span<const int32_t> tokens, uint64_t salt) override;
  int64_t bytes() const override;
  size_t size() const;
  int64_t budget() const { return budget_; }

 private:
  struct Slot {
    uint64_t program;
    Entry entry;
    int64_t bytes;
  };
  using List = std::list<Slot>;  // most recently used at the front
  static int64_t cost(const Entry& e);
  static bool prefix_of(const Entry& e, std::span<const int32_t> tokens, uint64_t salt);
  void erase(List::iterator it);

  const int64_t budget_;
  mutable std::mutex mu_;
  List lru_;
  std::unordered_map<uint64_t, List::iterator> by_program_;
  int64_t bytes_ = 0;
};

}  // namespace mnemo::memory::tiers
