#pragma once
// nlohmann's parser recurses once per nesting level: a line of 100,000 '['
// from a broken MCP server would overflow mnemod's stack. This one pass over
// the bytes bounds the depth before the parser sees them.
#include <string_view>

namespace mnemo::plugins {

inline constexpr int kMaxJsonDepth = 64;

// The deepest nesting of arrays and objects in `text` (strings skipped).
// Stops counting past `limit` (returns limit + 1).
int json_depth(std::string_view text, int limit = kMaxJsonDepth);

}  // namespace mnemo::plugins
