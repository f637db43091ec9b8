#include "daemon/protocol/tool_limits.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "daemon/protocol/limits.h"

namespace mnemo::daemon::protocol {

std::optional<std::string> schema_problem(const Json& parameters) {
  // Iterative, so no schema can exhaust the stack whatever checked it before.
  std::vector<std::pair<const Json*, int>> todo{{&parameters, 1}};
  size_t elements = 0;
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (++elements > kMaxSchemaElements)
      return "the schema has more than " + std::to_string(kMaxSchemaElements) + " elements";
    if (!v->is_structured()) continue;
    if (depth > kMaxSchemaDepth) return "the schema nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels";
    for (const Json& child : *v) todo.emplace_back(&child, depth + 1);
  }
  return std::nullopt;
}

bool valid_tool_name(const std::string& s) {
  if (s.empty() || s.size() > kMaxToolNameChars) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

size_t compact_json_size(const Json& v) {
  // Recursive, but only ever given documents the intake bounded in depth.
  return v.dump(-1, ' ', false, Json::error_handler_t::replace).size();
}

}  // namespace mnemo::daemon::protocol
