#include "daemon/app/generated_memory.h"

namespace mnemo::daemon::app {

std::string GeneratedMemory::key(uint64_t salt, const std::string& content, const std::vector<engine::ToolCall>& calls) {
  // Length-prefixed fields: no two messages share a key.
  std::string k(reinterpret_cast<const char*>(&salt), sizeof salt);
  auto field = [&](const std::string& s) {
    const uint64_t n = s.size();
    k.append(reinterpret_cast<const char*>(&n), sizeof n);
    k += s;
  };
  field(content);
  for (const engine::ToolCall& c : calls) {
    field(c.id);
    field(c.name);
    field(c.arguments);
  }
  return k;
}

void GeneratedMemory::remember(uint64_t salt, const std::string& content, const std::vector<engine::ToolCall>& calls,
                               std::vector<int32_t> tokens) {
  if (tokens.empty() || tokens.size() > opt_.max_tokens) return;
  std::string k = key(salt, content, calls);
  if (k.size() > opt_.max_key_bytes) return;
  auto t = std::make_shared<const std::vector<int32_t>>(std::move(tokens));
  std::lock_guard lock(mu_);
  if (auto it = index_.find(k); it != index_.end()) {
    const auto old = it->second;
    tokens_ -= old->tokens->size();
    index_.erase(it);
    lru_.erase(old);
  }
  tokens_ += t->size();
  lru_.push_front(Entry{std::move(k), std::move(t)});
  index_.emplace(lru_.front().key, lru_.begin());
  evict_locked();
}

GeneratedMemory::Tokens GeneratedMemory::find(uint64_t salt, const engine::ChatMessage& m) {
  if (m.role != "assistant") return nullptr;
  const std::string k = key(salt, m.content, m.tool_calls);
  std::lock_guard lock(mu_);
  auto it = index_.find(k);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->tokens;
}

void GeneratedMemory::evict_locked() {
  while (!lru_.empty() && (lru_.size() > opt_.max_entries || tokens_ > opt_.max_tokens)) {
    tokens_ -= lru_.back().tokens->size();
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

size_t GeneratedMemory::entries() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

size_t GeneratedMemory::tokens() const {
  std::lock_guard lock(mu_);
  return tokens_;
}

}  // namespace mnemo::daemon::app
