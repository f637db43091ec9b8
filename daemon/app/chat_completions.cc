#include "daemon/app/chat_completions.h"

#include "daemon/app/chat_fields.h"

#include "daemon/protocol/limits.h"
#include "daemon/protocol/tool_limits.h"

namespace mnemo::daemon::app {

using json = protocol::Json;

namespace {

std::string type_name(const json& j) { return j.type_name(); }

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const json& obj, const char* name, const std::string& path, bool required) {
  const json* v = field(obj, name);
  if (!v) {
    if (required) throw BadRequest("'" + path + "' is required", path);
    return "";
  }
  if (!v->is_string()) throw BadRequest("'" + path + "' must be a string, not " + type_name(*v), path);
  return v->get<std::string>();
}

std::string bounded(std::string s, size_t max_bytes, const std::string& path) {
  if (s.size() > max_bytes)
    throw BadRequest("'" + path + "' is longer than " + std::to_string(max_bytes) + " bytes", path);
  return s;
}

// Continuum's ids and call descriptions: a string, or JSON kept as its text.
std::string text_or_json(const json& v, size_t max_bytes, const std::string& path) {
  return bounded(v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, json::error_handler_t::replace),
                 max_bytes, path);
}

// content: a string, or an array of {"type": "text", "text": ...} parts.
std::string content_text(const json& m, const std::string& path) {
  const json* c = field(m, "content");
  if (!c) return "";
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) throw BadRequest("'" + path + "' must be a string or an array of text parts", path);
  std::string out;
  for (const auto& part : *c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      throw BadRequest("'" + path + "': only text parts are supported", path);
    out += part["text"].get<std::string>();
  }
  return out;
}

// last_call_id: the id of the latest assistant tool call, which a legacy
// `function` message (it has no id) answers.
engine::ChatMessage parse_message(const json& m, size_t i, std::string& last_call_id) {
  const std::string path = "messages[" + std::to_string(i) + "]";
  if (!m.is_object()) throw BadRequest("'" + path + "' must be an object", path);
  engine::ChatMessage out;
  out.role = string_field(m, "role", path + ".role", true);
  if (out.role == "developer") out.role = "system";
  if (out.role != "system" && out.role != "user" && out.role != "assistant" && out.role != "tool" &&
      out.role != "function")
    throw BadRequest("'" + path + ".role' must be system, user, assistant or tool, not '" + out.role + "'", path + ".role");
  out.content = content_text(m, path + ".content");
  if (out.role == "function") {
    // Legacy: a function's result, as the tool message it is.
    out.role = "tool";
    out.name = bounded(string_field(m, "name", path + ".name", true), protocol::kMaxNameBytes, path + ".name");
    out.tool_call_id = last_call_id;
  } else if (out.role == "tool") {
    out.tool_call_id = bounded(string_field(m, "tool_call_id", path + ".tool_call_id", true), protocol::kMaxIdBytes,
                               path + ".tool_call_id");
    out.name = bounded(string_field(m, "name", path + ".name", false), protocol::kMaxNameBytes, path + ".name");
  }
  if (const json* calls = field(m, "tool_calls"); calls && out.role == "assistant") {
    if (!calls->is_array() || calls->size() > protocol::kMaxToolCalls)
      throw BadRequest("'" + path + ".tool_calls' must be an array of at most " + std::to_string(protocol::kMaxToolCalls) +
                           " calls",
                       path + ".tool_calls");
    for (size_t k = 0; k < calls->size(); ++k) {
      const std::string cp = path + ".tool_calls[" + std::to_string(k) + "]";
      const json& c = (*calls)[k];
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
        throw BadRequest("'" + cp + "' must be {id, type: \"function\", function: {name, arguments}}", cp);
      engine::ToolCall t;
      t.id = bounded(string_field(c, "id", cp + ".id", false), protocol::kMaxIdBytes, cp + ".id");
      t.name = bounded(string_field(c["function"], "name", cp + ".function.name", true), protocol::kMaxNameBytes,
                       cp + ".function.name");
      const json* args = field(c["function"], "arguments");
      t.arguments = !args ? "{}" : text_or_json(*args, SIZE_MAX, cp + ".function.arguments");
      out.tool_calls.push_back(std::move(t));
    }
  }
  if (const json* fc = field(m, "function_call"); fc && out.role == "assistant" && out.tool_calls.empty()) {
    // Legacy: one call, with no id; it gets one the function message can answer.
    const std::string cp = path + ".function_call";
    if (!fc->is_object()) throw BadRequest("'" + cp + "' must be {name, arguments}", cp);
    engine::ToolCall t;
    t.id = "call_" + std::to_string(i);
    t.name = bounded(string_field(*fc, "name", cp + ".name", true), protocol::kMaxNameBytes, cp + ".name");
    const json* args = field(*fc, "arguments");
    t.arguments = !args ? "{}" : text_or_json(*args, SIZE_MAX, cp + ".arguments");
    out.tool_calls.push_back(std::move(t));
  }
  if (!out.tool_calls.empty()) last_call_id = out.tool_calls.back().id;
  return out;
}

template <class T>
std::optional<T> number_field(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number() || (std::is_integral_v<T> && !v->is_number_integer()))
    throw BadRequest(std::string("'") + name + "' must be " + (std::is_integral_v<T> ? "an integer" : "a number"), name);
  return v->get<T>();
}

void parse_program(const json& src, ProgramInfo& p) {
  constexpr size_t kMaxCallBytes = 1024;
  if (const json* j = field(src, "job_id")) p.job_id = text_or_json(*j, protocol::kMaxIdBytes, "job_id");
  if (const json* j = field(src, "is_last_step")) {
    if (!j->is_boolean()) throw BadRequest("'is_last_step' must be a boolean", "is_last_step");
    p.is_last_step = j->get<bool>();
  }
  if (const json* j = field(src, "this_func_call")) p.this_func_call = text_or_json(*j, kMaxCallBytes, "this_func_call");
  if (const json* j = field(src, "last_func_call")) p.last_func_call = text_or_json(*j, kMaxCallBytes, "last_func_call");
}

}  // namespace

void parse_tools(const json& tools, json& out) {
  if (!tools.is_array() || tools.size() > protocol::kMaxTools)
    throw BadRequest("'tools' must be an array of at most " + std::to_string(protocol::kMaxTools) + " tools", "tools");
  if (protocol::compact_json_size(tools) > protocol::kMaxToolsBytes)
    throw BadRequest("'tools' take more than " + std::to_string(protocol::kMaxToolsBytes) + " bytes as compact JSON",
                     "tools");
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string path = "tools[" + std::to_string(i) + "]";
    const json& t = tools[i];
    if (!t.is_object() || t.value("type", "function") != "function" || !t.contains("function") ||
        !t["function"].is_object())
      throw BadRequest("'" + path + "' must be {type: \"function\", function: {name, ...}}", path);
    const json& f = t["function"];
    const std::string name = string_field(f, "name", path + ".function.name", true);
    if (!protocol::valid_tool_name(name))
      throw BadRequest("'" + path + ".function.name' must be 1 to 64 characters from a-z A-Z 0-9 _ -",
                       path + ".function.name");
    string_field(f, "description", path + ".function.description", false);
    if (const json* p = field(f, "parameters")) {
      if (!p->is_object()) throw BadRequest("'" + path + ".function.parameters' must be an object", path + ".function.parameters");
      if (auto why = protocol::schema_problem(*p)) throw BadRequest("'" + path + ".function.parameters': " + *why, path + ".function.parameters");
    }
    for (size_t k = 0; k < i; ++k)
      if (tools[k]["function"]["name"] == name)
        throw BadRequest("'" + path + ".function.name': a second tool named '" + name + "'", path + ".function.name");
  }
  out = tools;
}

ChatCompletionRequest parse_chat_completion(std::string_view body, const protocol::IntakeLimits& limits) {
  return parse_chat_completion(protocol::parse_client_json(body, limits));
}

ChatCompletionRequest parse_chat_completion(const json& body) {
  if (!body.is_object()) throw BadRequest("the request body must be a JSON object");
  ChatCompletionRequest r;
  r.model = string_field(body, "model", "model", false);
  const json* messages = field(body, "messages");
  if (!messages || !messages->is_array() || messages->empty())
    throw BadRequest("'messages' must be a non-empty array", "messages");
  std::string last_call_id;
  for (size_t i = 0; i < messages->size(); ++i) r.spec.messages.push_back(parse_message((*messages)[i], i, last_call_id));

  if (const json* tools = field(body, "tools")) parse_tools(*tools, r.spec.tools);
  r.spec.tool_choice = r.spec.tools.empty() ? ToolChoiceMode::None : ToolChoiceMode::Auto;
  if (const json* tc = field(body, "tool_choice")) {
    if (tc->is_string()) {
      const std::string s = tc->get<std::string>();
      if (s == "none") r.spec.tool_choice = ToolChoiceMode::None;
      else if (s == "auto") r.spec.tool_choice = ToolChoiceMode::Auto;
      else if (s == "required") r.spec.tool_choice = ToolChoiceMode::Required;
      else throw BadRequest("'tool_choice' must be none, auto, required or a function, not '" + s + "'", "tool_choice");
    } else if (tc->is_object() && tc->contains("function") && (*tc)["function"].is_object() &&
               (*tc)["function"].contains("name") && (*tc)["function"]["name"].is_string()) {
      r.spec.tool_choice = ToolChoiceMode::Function;
      r.spec.function = (*tc)["function"]["name"].get<std::string>();
      bool known = false;
      for (const auto& t : r.spec.tools) known = known || t["function"]["name"] == r.spec.function;
      if (!known) throw BadRequest("'tool_choice' names '" + r.spec.function + "', which is not in 'tools'", "tool_choice");
    } else {
      throw BadRequest("'tool_choice' must be a string or {type: \"function\", function: {name}}", "tool_choice");
    }
    if (r.spec.tool_choice != ToolChoiceMode::None && r.spec.tool_choice != ToolChoiceMode::Auto && r.spec.tools.empty())
      throw BadRequest("'tool_choice' asks for a tool call but 'tools' is empty", "tool_choice");
  }

  parse_legacy_functions(body, r);

  if (const json* rf = field(body, "response_format")) r.spec.format = parse_response_format(*rf, "response_format");

  if (const json* s = field(body, "stream")) {
    if (!s->is_boolean()) throw BadRequest("'stream' must be a boolean", "stream");
    r.stream = s->get<bool>();
  }
  if (const json* so = field(body, "stream_options"); so && so->is_object())
    r.include_usage = so->value("include_usage", false);

  protocol::Sampling& sm = r.spec.sampling;
  sm.temperature = number_field<double>(body, "temperature");
  sm.top_p = number_field<double>(body, "top_p");
  sm.seed = number_field<uint64_t>(body, "seed");
  sm.max_tokens = number_field<int64_t>(body, "max_completion_tokens");
  if (!sm.max_tokens) sm.max_tokens = number_field<int64_t>(body, "max_tokens");
  if (sm.max_tokens && *sm.max_tokens < 1) throw BadRequest("'max_tokens' must be at least 1", "max_tokens");
  if (sm.temperature && (*sm.temperature < 0 || *sm.temperature > 2))
    throw BadRequest("'temperature' must be between 0 and 2", "temperature");
  if (const json* stop = field(body, "stop")) {
    auto fits_bytes = [](const json& x) {
      return x.is_string() && !x.get_ref<const std::string&>().empty() &&
             x.get_ref<const std::string&>().size() <= protocol::kMaxStopBytes;
    };
    if (fits_bytes(*stop)) sm.stop = std::vector<std::string>{stop->get<std::string>()};
    else if (stop->is_array() && stop->size() <= protocol::kMaxStopStrings && std::all_of(stop->begin(), stop->end(), fits_bytes))
      sm.stop = stop->get<std::vector<std::string>>();
    else
      throw BadRequest("'stop' must be a string or an array of at most " + std::to_string(protocol::kMaxStopStrings) +
                           " strings, each of 1 to " + std::to_string(protocol::kMaxStopBytes) + " bytes",
                       "stop");
  }
  if (const json* n = field(body, "n")) {
    if (!n->is_number_integer() || n->get<int64_t>() < 1 || n->get<int64_t>() > ChatCompletionRequest::kMaxChoices)
      throw BadRequest("'n' must be an integer from 1 to " + std::to_string(ChatCompletionRequest::kMaxChoices), "n");
    r.n = int(n->get<int64_t>());
  }
  parse_token_sampling(body, r.spec.token_sampling);

  parse_program(body, r.program);
  if (const json* x = field(body, "vllm_xargs"); x && x->is_object()) parse_program(*x, r.program);
  return r;
}

}  // namespace mnemo::daemon::app
