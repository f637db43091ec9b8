#include "daemon/app/responses_request.h"

#include "daemon/app/chat_completions.h"
#include "daemon/protocol/limits.h"
#include "daemon/protocol/tool_limits.h"

namespace mnemo::daemon::app {

using json = protocol::Json;

namespace {

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_at(const json& obj, const char* name, const std::string& path, bool required,
                      size_t max_bytes = SIZE_MAX) {
  const json* v = field(obj, name);
  if (!v) {
    if (required) throw BadRequest("'" + path + "' is required", path);
    return "";
  }
  if (!v->is_string()) throw BadRequest("'" + path + "' must be a string, not " + std::string(v->type_name()), path);
  if (v->get_ref<const std::string&>().size() > max_bytes)
    throw BadRequest("'" + path + "' is longer than " + std::to_string(max_bytes) + " bytes", path);
  return v->get<std::string>();
}

// Ids and names that say which call or tool: never empty (found by fuzzing).
std::string name_at(const json& obj, const char* name, const std::string& path, size_t max_bytes) {
  std::string s = string_at(obj, name, path, true, max_bytes);
  if (s.empty()) throw BadRequest("'" + path + "' must not be empty", path);
  return s;
}

// A message's content: a string, or text parts (input_text, output_text).
std::string content_text(const json& c, const std::string& path) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) throw BadRequest("'" + path + "' must be a string or an array of content parts", path);
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const json& part = c[i];
    const std::string type = part.is_object() && part.contains("type") && part["type"].is_string()
                                 ? part["type"].get<std::string>()
                                 : "";
    if (type != "input_text" && type != "output_text" && type != "text")
      throw BadRequest("'" + p + "': only text parts (input_text, output_text) are supported, not '" + type + "'",
                       p + ".type");
    out += string_at(part, "text", p + ".text", true);
  }
  return out;
}

// The call a function_call_output answers, for its tool message's name.
std::string name_of_call(const std::vector<engine::ChatMessage>& so_far, const std::string& call_id) {
  for (auto it = so_far.rbegin(); it != so_far.rend(); ++it)
    for (const auto& c : it->tool_calls)
      if (c.id == call_id) return c.name;
  return "";
}

void parse_input(const json& input, ResponsesRequest& r) {
  if (input.is_string()) {
    r.input.push_back(engine::ChatMessage{.role = "user", .content = input.get<std::string>()});
    return;
  }
  if (!input.is_array()) throw BadRequest("'input' must be a string or an array of items", "input");
  for (size_t i = 0; i < input.size(); ++i) {
    const std::string path = "input[" + std::to_string(i) + "]";
    const json& item = input[i];
    if (!item.is_object()) throw BadRequest("'" + path + "' must be an object", path);
    const std::string type = item.contains("type") ? string_at(item, "type", path + ".type", true) : "message";
    if (type == "message") {
      engine::ChatMessage m;
      m.role = string_at(item, "role", path + ".role", true);
      if (m.role == "developer") m.role = "system";
      if (m.role != "system" && m.role != "user" && m.role != "assistant")
        throw BadRequest("'" + path + ".role' must be user, assistant, system or developer", path + ".role");
      const json* c = field(item, "content");
      m.content = c ? content_text(*c, path + ".content") : "";
      r.input.push_back(std::move(m));
    } else if (type == "function_call") {
      engine::ToolCall call;
      call.id = name_at(item, "call_id", path + ".call_id", protocol::kMaxIdBytes);
      call.name = name_at(item, "name", path + ".name", protocol::kMaxNameBytes);
      call.arguments = string_at(item, "arguments", path + ".arguments", false);
      if (call.arguments.empty()) call.arguments = "{}";
      // Calls of one turn are one assistant message with several calls.
      if (r.input.empty() || r.input.back().role != "assistant")
        r.input.push_back(engine::ChatMessage{.role = "assistant"});
      r.input.back().tool_calls.push_back(std::move(call));
    } else if (type == "function_call_output") {
      engine::ChatMessage m;
      m.role = "tool";
      m.tool_call_id = name_at(item, "call_id", path + ".call_id", protocol::kMaxIdBytes);
      const json* out = field(item, "output");
      if (!out) throw BadRequest("'" + path + ".output' is required", path + ".output");
      m.content = content_text(*out, path + ".output");
      m.name = name_of_call(r.input, m.tool_call_id);
      r.input.push_back(std::move(m));
    } else if (type == "reasoning") {
      // Reasoning items are a reasoning model's hidden state; this model has
      // none, so there is nothing to give back to it.
    } else {
      throw BadRequest("'" + path + ".type' '" + type +
                           "' is not supported (message, function_call, function_call_output are)",
                       path + ".type");
    }
  }
}

// Responses' flat function tools -> the chat-completions shape.
void parse_tools(const json& tools, ResponsesRequest& r) {
  if (!tools.is_array()) throw BadRequest("'tools' must be an array", "tools");
  json chat = json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string path = "tools[" + std::to_string(i) + "]";
    const json& t = tools[i];
    if (!t.is_object()) throw BadRequest("'" + path + "' must be an object", path);
    const std::string type = string_at(t, "type", path + ".type", true);
    if (type != "function")
      throw BadRequest("'" + path + ".type' '" + type + "' is not supported: mnemod serves function tools only",
                       path + ".type");
    json fn = json::object();
    fn["name"] = string_at(t, "name", path + ".name", true);
    if (const json* d = field(t, "description")) fn["description"] = *d;
    if (const json* p = field(t, "parameters")) fn["parameters"] = *p;
    chat.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  try {
    app::parse_tools(chat, r.tools);
  } catch (const BadRequest& e) {
    // Its paths are in the chat shape: tools[i].function.name -> tools[i].name.
    std::string f = e.field();
    if (auto at = f.find(".function"); at != std::string::npos) f.erase(at, 9);
    throw BadRequest(e.what(), f);
  }
  r.echo_tools = tools;
}

void parse_tool_choice(const json& tc, ResponsesRequest& r) {
  r.echo_tool_choice = tc;
  if (tc.is_string()) {
    const std::string s = tc.get<std::string>();
    if (s == "none") r.tool_choice = ToolChoiceMode::None;
    else if (s == "auto") r.tool_choice = ToolChoiceMode::Auto;
    else if (s == "required") r.tool_choice = ToolChoiceMode::Required;
    else throw BadRequest("'tool_choice' must be none, auto, required or {type: \"function\", name}", "tool_choice");
  } else if (tc.is_object() && tc.value("type", "") == "function" && tc.contains("name") && tc["name"].is_string()) {
    r.tool_choice = ToolChoiceMode::Function;
    r.function = tc["name"].get<std::string>();
    bool known = false;
    for (const auto& t : r.tools) known = known || t["function"]["name"] == r.function;
    if (!known) throw BadRequest("'tool_choice' names '" + r.function + "', which is not in 'tools'", "tool_choice");
  } else {
    throw BadRequest("'tool_choice' must be none, auto, required or {type: \"function\", name}", "tool_choice");
  }
  if ((r.tool_choice == ToolChoiceMode::Required || r.tool_choice == ToolChoiceMode::Function) && r.tools.empty())
    throw BadRequest("'tool_choice' asks for a tool call but 'tools' is empty", "tool_choice");
}

std::optional<double> number_at(const json& body, const char* name, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw BadRequest(std::string("'") + name + "' must be a number", name);
  const double d = v->get<double>();
  if (d < lo || d > hi)
    throw BadRequest(std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi),
                     name);
  return d;
}

bool bool_at(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) throw BadRequest(std::string("'") + name + "' must be a boolean", name);
  return v->get<bool>();
}

}  // namespace

ResponsesRequest parse_responses_request(std::string_view body, const protocol::IntakeLimits& limits) {
  return parse_responses_request(protocol::parse_client_json(body, limits));
}

ResponsesRequest parse_responses_request(const json& body) {
  if (!body.is_object()) throw BadRequest("the request body must be a JSON object");
  ResponsesRequest r;
  r.model = string_at(body, "model", "model", false);
  if (field(body, "previous_response_id"))
    r.previous_response_id = string_at(body, "previous_response_id", "previous_response_id", true, protocol::kMaxIdBytes);
  const json* input = field(body, "input");
  if (!input && !r.previous_response_id) throw BadRequest("'input' is required", "input");
  if (input) parse_input(*input, r);
  // Nothing to answer (found by fuzzing: [] or reasoning items only).
  if (r.input.empty() && !r.previous_response_id)
    throw BadRequest("'input' holds no message or function call to respond to", "input");
  if (field(body, "instructions")) r.instructions = string_at(body, "instructions", "instructions", true);
  if (const json* tools = field(body, "tools")) parse_tools(*tools, r);
  r.tool_choice = r.tools.empty() ? ToolChoiceMode::None : ToolChoiceMode::Auto;
  if (const json* tc = field(body, "tool_choice")) parse_tool_choice(*tc, r);
  r.parallel_tool_calls = bool_at(body, "parallel_tool_calls", true);
  r.store = bool_at(body, "store", true);
  r.stream = bool_at(body, "stream", false);
  r.sampling.temperature = number_at(body, "temperature", 0, 2);
  r.sampling.top_p = number_at(body, "top_p", 0, 1);
  if (r.sampling.top_p && *r.sampling.top_p == 0) throw BadRequest("'top_p' must be above 0", "top_p");
  if (const json* m = field(body, "max_output_tokens")) {
    if (!m->is_number_integer() || m->get<int64_t>() < 1 || m->get<int64_t>() > protocol::kMaxTokensLimit)
      throw BadRequest("'max_output_tokens' must be an integer from 1 to " + std::to_string(protocol::kMaxTokensLimit),
                       "max_output_tokens");
    r.sampling.max_tokens = m->get<int64_t>();
  }
  if (const json* md = field(body, "metadata")) {
    // OpenAI's bounds: 16 pairs, keys up to 64 characters, values up to 512.
    if (!md->is_object() || md->size() > 16) throw BadRequest("'metadata' must be an object of at most 16 pairs", "metadata");
    for (const auto& [k, v] : md->items())
      if (k.size() > 64 || !v.is_string() || v.get_ref<const std::string&>().size() > 512)
        throw BadRequest("'metadata." + k + "': keys up to 64 characters, values strings up to 512", "metadata");
    r.metadata = *md;
  }
  if (field(body, "truncation")) {
    r.truncation = string_at(body, "truncation", "truncation", true);
    if (r.truncation != "disabled" && r.truncation != "auto")
      throw BadRequest("'truncation' must be disabled or auto", "truncation");
  }
  if (const json* text = field(body, "text")) {
    if (!text->is_object()) throw BadRequest("'text' must be an object", "text");
    if (const json* f = field(*text, "format")) r.format = parse_text_format(*f, "text.format");
    r.text = *text;
    if (!r.text.contains("format")) r.text["format"] = {{"type", "text"}};
  }
  if (const json* cm = field(body, "context_management")) r.context_management = *cm;
  // Accepted silently these would lose what the client meant: a
  // conversation's history, a response to poll for later.
  if (field(body, "conversation"))
    throw BadRequest("'conversation' is not supported: chain responses with previous_response_id", "conversation");
  if (bool_at(body, "background", false))
    throw BadRequest("'background' responses are not supported: mnemod answers while the request is open",
                     "background");
  if (const json* n = field(body, "n"); n && !(n->is_number_integer() && n->get<int64_t>() == 1))
    throw BadRequest("'n' must be 1", "n");
  return r;
}

}  // namespace mnemo::daemon::app
