#include "memory/tiers/host_tier.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace mnemo::memory::tiers {

HostTier::HostTier(int64_t budget_bytes) : budget_(std::max<int64_t>(0, budget_bytes)) {}

int64_t HostTier::cost(const Entry& e) {
  return int64_t(e.kv.size() + e.tokens.size() * sizeof(int32_t) + sizeof(Entry));
}

bool HostTier::prefix_of(const Entry& e, std::span<const int32_t> tokens, uint64_t salt) {
  return e.salt == salt && e.tokens.size() <= tokens.size() && std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin());
}

void HostTier::erase(List::iterator it) {
  bytes_ -= it->bytes;
  by_program_.erase(it->program);
  lru_.erase(it);
}

bool HostTier::put(uint64_t program, Entry e) {
  const int64_t need = cost(e);
  std::lock_guard lock(mu_);
  if (auto old = by_program_.find(program); old != by_program_.end()) erase(old->second);
  if (need > budget_) {
    spdlog::debug("host tier: refused program {} ({} bytes > budget {})", program, need, budget_);
    return false;
  }
  while (bytes_ + need > budget_) {
    spdlog::debug("host tier: evicted program {} ({} bytes) for program {}", lru_.back().program, lru_.back().bytes,
                  program);
    erase(std::prev(lru_.end()));
  }
  lru_.push_front(Slot{program, std::move(e), need});
  by_program_[program] = lru_.begin();
  bytes_ += need;
  return true;
}

std::optional<engine::KvTier::Entry> HostTier::take(uint64_t program, std::span<const int32_t> tokens, uint64_t salt) {
  std::lock_guard lock(mu_);
  auto best = lru_.end();
  if (auto own = by_program_.find(program); own != by_program_.end() && prefix_of(own->second->entry, tokens, salt))
    best = own->second;
  else
    for (auto it = lru_.begin(); it != lru_.end(); ++it)
      if (prefix_of(it->entry, tokens, salt) && (best == lru_.end() || it->entry.tokens.size() > best->entry.tokens.size()))
        best = it;
  if (best == lru_.end()) return std::nullopt;
  Entry e = std::move(best->entry);
  e.program = best->program;
  erase(best);
  return e;
}

int64_t HostTier::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t HostTier::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace mnemo::memory::tiers
