#include "daemon/app/chat_fields.h"

#include <charconv>
#include <string>

namespace mnemo::daemon::app {

using json = protocol::Json;

namespace {

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

template <class T>
std::optional<T> number_field(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number() || (std::is_integral_v<T> && !v->is_number_integer()))
    throw BadRequest(std::string("'") + name + "' must be " + (std::is_integral_v<T> ? "an integer" : "a number"), name);
  return v->get<T>();
}

}  // namespace

void parse_token_sampling(const json& body, TokenSampling& t) {
  auto penalty = [&](const char* name, float& out) {
    if (auto v = number_field<double>(body, name)) {
      if (!(*v >= -2 && *v <= 2)) throw BadRequest(std::string("'") + name + "' must be between -2 and 2", name);
      out = float(*v);
    }
  };
  penalty("frequency_penalty", t.frequency_penalty);
  penalty("presence_penalty", t.presence_penalty);
  if (const json* b = field(body, "logit_bias")) {
    constexpr size_t kMaxBiases = 300;  // OpenAI's limit
    if (!b->is_object() || b->size() > kMaxBiases)
      throw BadRequest("'logit_bias' must be an object of at most " + std::to_string(kMaxBiases) +
                           " token ids (as strings) to numbers",
                       "logit_bias");
    for (const auto& [key, bias] : b->items()) {
      int32_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || id < 0)
        throw BadRequest("'logit_bias' key '" + key + "' is not a token id", "logit_bias");
      if (!bias.is_number() || !(bias.get<double>() >= -100 && bias.get<double>() <= 100))
        throw BadRequest("'logit_bias' of token " + key + " must be a number between -100 and 100", "logit_bias");
      t.logit_bias[id] = bias.get<float>();
    }
  }
  if (const json* lp = field(body, "logprobs")) {
    if (!lp->is_boolean()) throw BadRequest("'logprobs' must be a boolean", "logprobs");
    t.logprobs = lp->get<bool>();
  }
  if (auto top = number_field<int64_t>(body, "top_logprobs")) {
    if (*top < 0 || *top > 20) throw BadRequest("'top_logprobs' must be an integer from 0 to 20", "top_logprobs");
    if (*top > 0 && !t.logprobs) throw BadRequest("'top_logprobs' requires 'logprobs': true", "top_logprobs");
    t.top_logprobs = int32_t(*top);
  }
}


void parse_legacy_functions(const json& body, ChatCompletionRequest& r) {
  const json* fns = field(body, "functions");
  if (!fns) return;
  if (field(body, "tools")) throw BadRequest("give 'tools' or the legacy 'functions', not both", "functions");
  if (!fns->is_array()) throw BadRequest("'functions' must be an array of {name, description, parameters}", "functions");
  json tools = json::array();
  for (const auto& f : *fns) tools.push_back({{"type", "function"}, {"function", f}});
  try {
    parse_tools(tools, r.spec.tools);
  } catch (const BadRequest& e) {
    throw BadRequest(e.what(), "functions");
  }
  r.legacy_functions = true;
  r.spec.tool_choice = r.spec.tools.empty() ? ToolChoiceMode::None : ToolChoiceMode::Auto;
  const json* fc = field(body, "function_call");
  if (!fc) return;
  if (*fc == "none") {
    r.spec.tool_choice = ToolChoiceMode::None;
  } else if (*fc == "auto") {
    r.spec.tool_choice = ToolChoiceMode::Auto;
  } else if (fc->is_object() && fc->contains("name") && (*fc)["name"].is_string()) {
    r.spec.tool_choice = ToolChoiceMode::Function;
    r.spec.function = (*fc)["name"].get<std::string>();
    bool known = false;
    for (const auto& t : r.spec.tools) known = known || t["function"]["name"] == r.spec.function;
    if (!known)
      throw BadRequest("'function_call' names '" + r.spec.function + "', which is not in 'functions'", "function_call");
  } else {
    throw BadRequest("'function_call' must be none, auto or {name}", "function_call");
  }
}

}  // namespace mnemo::daemon::app
