#pragma once
// Checks of tool definitions shared by the WebSocket protocol and the HTTP
// API, run right after the JSON intake and before a tool reaches a template
// or the constrained decoder (limits.h: kMaxSchemaDepth, kMaxSchemaElements,
// kMaxToolsBytes).
#include <optional>
#include <string>

#include "daemon/protocol/json.h"

namespace mnemo::daemon::protocol {

// Why a tool's parameter schema is refused, or nothing when it is fine.
std::optional<std::string> schema_problem(const Json& parameters);

// Tool names as OpenAI's API allows them: 1 to 64 of a-z A-Z 0-9 _ -.
bool valid_tool_name(const std::string& s);

// The size of a value as compact JSON.
size_t compact_json_size(const Json& v);

}  // namespace mnemo::daemon::protocol
