#include "engine/constrain/tool_call_constraint.h"

#include <set>
#include <stdexcept>

namespace mnemo::engine {

namespace {

using Json = nlohmann::ordered_json;

struct Tool {
  std::string name;
  const Json* parameters;  // nullptr: none declared
};

std::vector<Tool> tools_of(const Json& tools) {
  if (!tools.is_array()) throw std::invalid_argument("tools: must be an array");
  std::vector<Tool> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string where = "tools[" + std::to_string(i) + "]";
    const Json& t = tools[i];
    const Json* f = t.is_object() && t.contains("function") ? &t["function"] : &t;
    if (!f->is_object() || !f->contains("name") || !(*f)["name"].is_string())
      throw std::invalid_argument(where + ": a function with a string name is required");
    std::string name = (*f)["name"].get<std::string>();
    if (!seen.insert(name).second) throw std::invalid_argument(where + ": duplicate function name '" + name + "'");
    const Json* params = f->contains("parameters") && !(*f)["parameters"].is_null() ? &(*f)["parameters"] : nullptr;
    out.push_back({std::move(name), params});
  }
  return out;
}

// The arguments are always a JSON object: the parser rejects anything else.
uint32_t arguments_node(Grammar& g, const Tool& tool) {
  if (!tool.parameters) return g.add_literal("{}");
  const Json& p = *tool.parameters;
  const std::string where = "tool '" + tool.name + "' parameters";
  if (!p.is_object()) throw std::invalid_argument(where + ": must be a JSON schema object");
  if (p.contains("type") && p["type"] != "object") throw std::invalid_argument(where + ": type must be \"object\"");
  Json schema = p;
  schema["type"] = "object";
  schema.erase("anyOf");
  schema.erase("oneOf");
  try {
    return g.add_schema(schema);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

// The marker as its added token when the tokenizer has one.
std::optional<int32_t> marker_token(const Tokenizer& tokenizer, const std::string& marker) {
  const auto id = tokenizer.token_id(marker);
  if (id && tokenizer.is_added(*id)) return id;
  return std::nullopt;
}

}  // namespace

std::unique_ptr<GrammarConstraint> make_tool_call_constraint(std::shared_ptr<const TokenTrie> vocab,
                                                             const Tokenizer& tokenizer, ToolCallSyntax syntax,
                                                             const nlohmann::ordered_json& tools,
                                                             const std::optional<std::string>& function,
                                                             GrammarLimits limits) {
  std::vector<Tool> all = tools_of(tools);
  if (all.empty()) throw std::invalid_argument("tool_choice requires a tool call but no tools were given");
  std::vector<Tool> chosen;
  for (const Tool& t : all)
    if (!function || t.name == *function) chosen.push_back(t);
  if (chosen.empty()) throw std::invalid_argument("tool_choice names function '" + *function + "', which is not among the tools");

  std::string open, close, args_key = "arguments";
  switch (syntax) {
    case ToolCallSyntax::Hermes:
      open = "<tool_call>", close = "</tool_call>";
      limits.forbid_close_tag = true;
      break;
    case ToolCallSyntax::Llama3:
      args_key = "parameters";
      break;
    case ToolCallSyntax::Mistral:
      open = "[TOOL_CALLS]";
      break;
  }
  auto g = std::make_shared<Grammar>(limits);
  // {"name": "NAME", "arguments": ARGS}: the name picks the schema.
  std::vector<std::pair<std::string, int32_t>> calls;
  const uint32_t end_brace = g->add_literal("}");
  for (const Tool& t : chosen) {
    const uint32_t args = arguments_node(*g, t);
    const std::string head = R"({"name": )" + Json(t.name).dump() + R"(, ")" + args_key + R"(": )";
    calls.emplace_back(head, static_cast<int32_t>(g->add_seq({args, end_brace})));
  }
  const uint32_t call = g->add_choice(calls);

  const std::optional<int32_t> open_id = open.empty() ? std::nullopt : marker_token(tokenizer, open);
  const std::optional<int32_t> close_id = close.empty() ? std::nullopt : marker_token(tokenizer, close);
  std::string before = open_id ? "" : open, after;
  switch (syntax) {
    case ToolCallSyntax::Hermes:
      before += "\n";
      after = "\n" + (close_id ? "" : close);
      break;
    case ToolCallSyntax::Llama3:
      break;
    case ToolCallSyntax::Mistral:
      before += " [";
      after = "]";
      break;
  }
  std::vector<uint32_t> seq;
  if (!before.empty()) seq.push_back(g->add_literal(before));
  seq.push_back(call);
  if (!after.empty()) seq.push_back(g->add_literal(after));
  g->set_root(seq.size() == 1 ? seq[0] : g->add_seq(seq));

  std::vector<ConstraintPart> parts;
  if (open_id) parts.push_back({open_id, nullptr});
  parts.push_back({std::nullopt, std::move(g)});
  if (close_id) parts.push_back({close_id, nullptr});
  return std::make_unique<GrammarConstraint>(std::move(vocab), std::move(parts));
}

}  // namespace mnemo::engine
