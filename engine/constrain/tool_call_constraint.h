// Forces one tool call in a model family's syntax, its arguments valid
// against the tool's parameter schema: what tool_choice "required" or a
// named function asks of the OpenAI-compatible endpoint.
//
//   Hermes   <tool_call>\n{"name": "NAME", "arguments": {...}}\n</tool_call>
//   Llama3   {"name": "NAME", "parameters": {...}}
//   Mistral  [TOOL_CALLS] [{"name": "NAME", "arguments": {...}}]
//
// Markers that are added tokens of the tokenizer (<tool_call> in Qwen,
// [TOOL_CALLS] in Mistral) are produced as that token; otherwise as text.
// The text round-trips through ToolCallParser to exactly one call.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/constrain/grammar_constraint.h"
#include "engine/tokenizer/tool_call_parser.h"

namespace mnemo::engine {

// tools: OpenAI tool definitions ({"type": "function", "function": {"name",
// "parameters"}}; a bare {"name", "parameters"} is taken too). function:
// the named tool_choice, or nullopt for "required" (any of the tools).
// Throws std::invalid_argument naming what is wrong: no tools, a tool
// without a name, duplicate names, an unknown function, a parameters
// schema that is not an object schema or cannot be satisfied.
std::unique_ptr<GrammarConstraint> make_tool_call_constraint(std::shared_ptr<const TokenTrie> vocab,
                                                             const Tokenizer& tokenizer, ToolCallSyntax syntax,
                                                             const nlohmann::ordered_json& tools,
                                                             const std::optional<std::string>& function,
                                                             GrammarLimits limits = {});

}  // namespace mnemo::engine
