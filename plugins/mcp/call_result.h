#pragma once
// An MCP tools/call result (CallToolResult) as the text the model reads:
// text items joined by newlines, other content described in a few words,
// structuredContent as JSON when there is no text, isError kept.
#include <cstddef>
#include <string>

#include "plugins/tool.h"

namespace mnemo::plugins::mcp {

// A server's field as text; absent, or of another type, gives `fallback`
// (json::value would throw on a number where a string belongs).
std::string text_field(const Json& j, const char* key, const char* fallback = "");

// Never throws on odd shapes: a malformed result is Failure::InvalidOutput,
// text over max_bytes Failure::TooLarge.
ToolResult to_tool_result(const std::string& server, const Json& result, size_t max_bytes);

}  // namespace mnemo::plugins::mcp
