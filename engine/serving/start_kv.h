#pragma once
// What the engine checks of a request's starting KV snapshot before it
// accepts it (Request::start_kv): the snapshot's token prefix, salt and the
// slots it will occupy, read from the snapshot's header and layer headers
// without copying its K and V.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/kv/kv_config.h"

namespace mnemo::engine {

struct StartKvInfo {
  std::vector<int32_t> tokens;  // the tokens whose K,V it holds (true positions 0..n-1)
  uint64_t salt = 0;
  bool compacted = false;
  int64_t slots = 0;  // the longest layer: what importing it takes per layer, in tokens
};

// nullopt, with *why set, when the bytes are not an export_sequence image
// for a cache of this configuration (wrong magic, version, shapes, or
// truncated). The layout is KvCacheManager::export_sequence's
// (engine/kv/kv_snapshot.cc); import_sequence still does the full checks.
std::optional<StartKvInfo> read_start_kv(std::span<const uint8_t> bytes, const kv::KvConfig& cfg, std::string* why);

}  // namespace mnemo::engine
