#include "daemon/app/chat_completions.h"

namespace mnemo::daemon::app {

using nlohmann::json;

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

engine::ChatMessage parse_message(const json& m, size_t i) {
  const std::string path = "messages[" + std::to_string(i) + "]";
  if (!m.is_object()) throw BadRequest("'" + path + "' must be an object", path);
  engine::ChatMessage out;
  out.role = string_field(m, "role", path + ".role", true);
  if (out.role == "developer") out.role = "system";
  if (out.role != "system" && out.role != "user" && out.role != "assistant" && out.role != "tool")
    throw BadRequest("'" + path + ".role' must be system, user, assistant or tool, not '" + out.role + "'", path + ".role");
  out.content = content_text(m, path + ".content");
  if (out.role == "tool") {
    out.tool_call_id = string_field(m, "tool_call_id", path + ".tool_call_id", true);
    out.name = string_field(m, "name", path + ".name", false);
  }
  if (const json* calls = field(m, "tool_calls"); calls && out.role == "assistant") {
    if (!calls->is_array()) throw BadRequest("'" + path + ".tool_calls' must be an array", path + ".tool_calls");
    for (size_t k = 0; k < calls->size(); ++k) {
      const std::string cp = path + ".tool_calls[" + std::to_string(k) + "]";
      const json& c = (*calls)[k];
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
        throw BadRequest("'" + cp + "' must be {id, type: \"function\", function: {name, arguments}}", cp);
      engine::ToolCall t;
      t.id = string_field(c, "id", cp + ".id", false);
      t.name = string_field(c["function"], "name", cp + ".function.name", true);
      const json* args = field(c["function"], "arguments");
      t.arguments = !args ? "{}" : args->is_string() ? args->get<std::string>() : args->dump();
      out.tool_calls.push_back(std::move(t));
    }
  }
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
  if (const json* j = field(src, "job_id")) p.job_id = j->is_string() ? j->get<std::string>() : j->dump();
  if (const json* j = field(src, "is_last_step")) {
    if (!j->is_boolean()) throw BadRequest("'is_last_step' must be a boolean", "is_last_step");
    p.is_last_step = j->get<bool>();
  }
  if (const json* j = field(src, "this_func_call")) p.this_func_call = j->is_string() ? j->get<std::string>() : j->dump();
  if (const json* j = field(src, "last_func_call")) p.last_func_call = j->is_string() ? j->get<std::string>() : j->dump();
}

}  // namespace

ChatCompletionRequest parse_chat_completion(const json& body) {
  if (!body.is_object()) throw BadRequest("the request body must be a JSON object");
  ChatCompletionRequest r;
  r.model = string_field(body, "model", "model", false);
  const json* messages = field(body, "messages");
  if (!messages || !messages->is_array() || messages->empty())
    throw BadRequest("'messages' must be a non-empty array", "messages");
  for (size_t i = 0; i < messages->size(); ++i) r.spec.messages.push_back(parse_message((*messages)[i], i));

  if (const json* tools = field(body, "tools")) {
    if (!tools->is_array()) throw BadRequest("'tools' must be an array", "tools");
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& t = (*tools)[i];
      if (!t.is_object() || t.value("type", "function") != "function" || !t.contains("function") ||
          !t["function"].is_object() || !t["function"].contains("name") || !t["function"]["name"].is_string())
        throw BadRequest("'tools[" + std::to_string(i) + "]' must be {type: \"function\", function: {name, ...}}",
                         "tools");
    }
    r.spec.tools = nlohmann::ordered_json::parse(tools->dump());
  }
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
    if (stop->is_string()) sm.stop = std::vector<std::string>{stop->get<std::string>()};
    else if (stop->is_array() && std::all_of(stop->begin(), stop->end(), [](const json& x) { return x.is_string(); }))
      sm.stop = stop->get<std::vector<std::string>>();
    else throw BadRequest("'stop' must be a string or an array of strings", "stop");
  }

  parse_program(body, r.program);
  if (const json* x = field(body, "vllm_xargs"); x && x->is_object()) parse_program(*x, r.program);
  return r;
}

}  // namespace mnemo::daemon::app
