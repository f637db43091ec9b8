#pragma once
// The tokens the model generated for recent assistant messages, so the next
// prompt can give them back as generated (engine/tokenizer/generated_turns.h)
// instead of the template's re-serialisation: the next turn then reuses the
// whole KV its previous turn left. Keyed by the message as the API returned
// it (content and tool calls with their ids) and the tenant's cache salt: a
// message edited by the client, or sent by another tenant, finds nothing.
// Bounded LRU (entries and tokens). Thread-safe.
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer/chat_template.h"

namespace mnemo::daemon::app {

struct GeneratedMemoryOptions {
  size_t max_entries = 4096;
  size_t max_tokens = size_t(1) << 21;  // 8 MiB of ids, besides the keys
  size_t max_key_bytes = size_t(1) << 20;  // a longer message is not remembered
};

class GeneratedMemory {
 public:
  using Tokens = std::shared_ptr<const std::vector<int32_t>>;
  explicit GeneratedMemory(GeneratedMemoryOptions opt = {}) : opt_(opt) {}

  void remember(uint64_t salt, const std::string& content, const std::vector<engine::ToolCall>& calls,
                std::vector<int32_t> tokens);
  // Null when the message was not generated here recently (or not as sent).
  Tokens find(uint64_t salt, const engine::ChatMessage& m);

  size_t entries() const;
  size_t tokens() const;

 private:
  static std::string key(uint64_t salt, const std::string& content, const std::vector<engine::ToolCall>& calls);
  struct Entry {
    std::string key;
    Tokens tokens;
  };
  void evict_locked();

  GeneratedMemoryOptions opt_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
  size_t tokens_ = 0;
};

}  // namespace mnemo::daemon::app
