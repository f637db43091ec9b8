#include "engine/tokenizer/tool_call_parser.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/json_shape.h"
#include "engine/tokenizer/python_json.h"

namespace mnemo::engine {

namespace {

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralTag = "[TOOL_CALLS]";
// A call that never closes must not grow without bound.
constexpr size_t kMaxCallBytes = 1 << 20;

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t skip_space(std::string_view s, size_t i = 0) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// One past the end of the JSON object or array starting at s[0], or npos
// when it is not complete yet. Strings and escapes are honoured so braces in
// them do not count.
size_t json_end(std::string_view s) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth;
    else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
      if (depth < 0) return i + 1;  // unbalanced: let the JSON parser report it
    }
  }
  return std::string_view::npos;
}

std::string trimmed(std::string_view s) {
  size_t b = skip_space(s), e = s.size();
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// tool.call(key="value", n=3) -> name and arguments object.
std::optional<std::pair<std::string, nlohmann::ordered_json>> parse_builtin_call(std::string_view s, std::string& why) {
  const size_t dot = s.find(".call(");
  if (dot == std::string_view::npos || dot == 0) { why = "expected JSON or name.call(...)"; return std::nullopt; }
  std::string name(s.substr(0, dot));
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) { why = "bad tool name '" + name + "'"; return std::nullopt; }
  }
  size_t i = dot + 6;
  nlohmann::ordered_json args = nlohmann::ordered_json::object();
  while (true) {
    i = skip_space(s, i);
    if (i < s.size() && s[i] == ')') break;
    size_t eq = s.find('=', i);
    if (eq == std::string_view::npos) { why = "expected key=value in call arguments"; return std::nullopt; }
    const std::string key = trimmed(s.substr(i, eq - i));
    i = skip_space(s, eq + 1);
    if (i >= s.size()) { why = "unterminated call arguments"; return std::nullopt; }
    if (s[i] == '"' || s[i] == '\'') {
      const char q = s[i];
      std::string value;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != q; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) ++j;
        value.push_back(s[j]);
      }
      if (j >= s.size()) { why = "unterminated string in call arguments"; return std::nullopt; }
      args[key] = value;
      i = j + 1;
    } else {
      size_t j = i;
      while (j < s.size() && s[j] != ',' && s[j] != ')') ++j;
      const std::string text = trimmed(s.substr(i, j - i));
      auto v = json_nesting_within(text, kMaxEmbeddedJsonDepth) ? nlohmann::ordered_json::parse(text, nullptr, false)
                                                                 : nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded);
      if (v.is_discarded()) { why = "bad value for '" + key + "'"; return std::nullopt; }
      args[key] = v;
      i = j;
    }
    i = skip_space(s, i);
    if (i < s.size() && s[i] == ',') ++i;
    else if (i >= s.size() || s[i] != ')') { why = "expected ',' or ')' in call arguments"; return std::nullopt; }
  }
  if (trimmed(s.substr(i + 1)).size() != 0) { why = "text after the call"; return std::nullopt; }
  return std::make_pair(std::move(name), std::move(args));
}

}  // namespace

std::optional<ToolCallSyntax> tool_call_syntax_for_family(std::string_view family) {
  if (family == "chatml") return ToolCallSyntax::Hermes;
  if (family == "llama3.1") return ToolCallSyntax::Llama3;
  if (family == "mistral") return ToolCallSyntax::Mistral;
  return std::nullopt;
}

ToolCallParser::ToolCallParser(ToolCallSyntax syntax, uint64_t id_seed)
    : syntax_(syntax), mode_(syntax == ToolCallSyntax::Llama3 ? Mode::Start : Mode::Text), rng_(id_seed) {}

std::string ToolCallParser::next_id() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id;
  for (int i = 0; i < 9; ++i) id.push_back(kAlphabet[rng_() % (sizeof kAlphabet - 1)]);
  return id;
}

void ToolCallParser::add_call(std::string_view json_text, ToolCallDelta& out) {
  auto fail = [&](const std::string& why) { out.errors.push_back({why, std::string(json_text)}); };
  // What follows copies and dumps the call recursively; generated text can
  // nest as deep as the context is long.
  if (!json_nesting_within(json_text, kMaxEmbeddedJsonDepth))
    return fail("tool call nested deeper than " + std::to_string(kMaxEmbeddedJsonDepth) + " levels");
  auto j = nlohmann::ordered_json::parse(json_text, nullptr, false);
  if (j.is_discarded()) return fail("tool call is not valid JSON");
  std::vector<nlohmann::ordered_json> items;
  if (j.is_array()) items.assign(j.begin(), j.end());
  else items.push_back(std::move(j));
  for (auto& item : items) {
    if (!item.is_object()) { fail("tool call must be a JSON object"); continue; }
    if (!item.contains("name") || !item["name"].is_string()) { fail("tool call has no string \"name\""); continue; }
    nlohmann::ordered_json args = nlohmann::ordered_json::object();
    for (const char* key : {"arguments", "parameters"}) {
      if (item.contains(key)) { args = item[key]; break; }
    }
    if (args.is_string()) {
      // Some models double-encode; the arguments must still be JSON.
      if (!json_nesting_within(args.get_ref<const std::string&>(), kMaxEmbeddedJsonDepth)) {
        fail("tool call arguments nested deeper than " + std::to_string(kMaxEmbeddedJsonDepth) + " levels");
        continue;
      }
      auto inner = nlohmann::ordered_json::parse(args.get<std::string>(), nullptr, false);
      if (inner.is_discarded()) { fail("tool call arguments are a string that is not JSON"); continue; }
      args = std::move(inner);
    }
    if (!args.is_object()) { fail("tool call arguments must be a JSON object"); continue; }
    std::string id = item.contains("id") && item["id"].is_string() ? item["id"].get<std::string>() : next_id();
    out.calls.push_back({std::move(id), item["name"].get<std::string>(), python_json_dumps(args)});
  }
}

void ToolCallParser::emit_text_keeping_prefix_of(std::string_view marker, ToolCallDelta& out, bool final) {
  size_t keep = 0;
  if (!final) {
    // The longest tail of buf_ that could still grow into the marker.
    for (size_t n = std::min(marker.size() - 1, buf_.size()); n > 0; --n) {
      if (std::string_view(buf_).substr(buf_.size() - n) == marker.substr(0, n)) { keep = n; break; }
    }
  }
  out.text += buf_.substr(0, buf_.size() - keep);
  buf_.erase(0, buf_.size() - keep);
}

void ToolCallParser::step_hermes(ToolCallDelta& out, bool final) {
  while (true) {
    if (mode_ == Mode::Text) {
      const size_t open = buf_.find(kHermesOpen);
      if (open == std::string::npos) return emit_text_keeping_prefix_of(kHermesOpen, out, final);
      out.text += buf_.substr(0, open);
      buf_.erase(0, open + kHermesOpen.size());
      mode_ = Mode::Call;
    }
    const size_t close = buf_.find(kHermesClose);
    if (close == std::string::npos) {
      if (!final) return;
      // A call cut off by the end of generation still counts if its JSON is whole.
      const std::string body = trimmed(buf_);
      if (!nlohmann::ordered_json::parse(body, nullptr, false).is_discarded()) add_call(body, out);
      else out.errors.push_back({"unterminated <tool_call>", std::string(kHermesOpen) + buf_});
      buf_.clear();
      mode_ = Mode::Text;
      return;
    }
    add_call(trimmed(std::string_view(buf_).substr(0, close)), out);
    buf_.erase(0, close + kHermesClose.size());
    mode_ = Mode::Text;
  }
}

void ToolCallParser::step_llama(ToolCallDelta& out, bool final) {
  if (mode_ == Mode::Start) {
    // The reply is a call only if it starts with one; decide once.
    const size_t b = skip_space(buf_);
    const std::string_view rest = std::string_view(buf_).substr(b);
    if (rest.starts_with(kPythonTag)) {
      python_tag_ = true;
      buf_.erase(0, b + kPythonTag.size());
      mode_ = Mode::Call;
    } else if (rest.starts_with("{")) {
      buf_.erase(0, b);
      mode_ = Mode::Call;
    } else if (!final && (rest.empty() || kPythonTag.starts_with(rest))) {
      return;
    } else {
      mode_ = Mode::Text;
    }
  }
  if (mode_ == Mode::Text) {
    out.text += buf_;
    buf_.clear();
    return;
  }
  while (true) {
    // Calls may be separated by ';' and whitespace, arriving in any chunks.
    size_t b = 0;
    while (b < buf_.size() && (is_space(buf_[b]) || (buf_[b] == ';' && !python_tag_))) ++b;
    if (b == buf_.size()) {
      buf_.clear();
      return;
    }
    if (buf_[b] != '{') {
      if (python_tag_ && !final) return;  // a built-in call is parsed when it is complete
      if (python_tag_) {
        std::string why;
        const std::string body = trimmed(buf_);
        if (auto call = parse_builtin_call(body, why)) out.calls.push_back({next_id(), call->first, python_json_dumps(call->second)});
        else out.errors.push_back({"bad <|python_tag|> call: " + why, body});
      } else {
        out.text += buf_.substr(b);
      }
      buf_.clear();
      mode_ = Mode::Text;
      return;
    }
    const size_t end = json_end(std::string_view(buf_).substr(b));
    if (end == std::string_view::npos) {
      if (final) {
        out.errors.push_back({"incomplete JSON tool call", buf_.substr(b)});
        buf_.clear();
      }
      return;
    }
    add_call(std::string_view(buf_).substr(b, end), out);
    buf_.erase(0, b + end);
    python_tag_ = false;
  }
}

void ToolCallParser::step_mistral(ToolCallDelta& out, bool final) {
  while (true) {
    if (mode_ == Mode::Text) {
      const size_t tag = buf_.find(kMistralTag);
      if (tag == std::string::npos) return emit_text_keeping_prefix_of(kMistralTag, out, final);
      out.text += buf_.substr(0, tag);
      buf_.erase(0, tag + kMistralTag.size());
      mode_ = Mode::Call;
    }
    const size_t b = skip_space(buf_);
    if (b == buf_.size()) {
      if (final) {
        out.errors.push_back({"[TOOL_CALLS] without calls", std::string(kMistralTag)});
        mode_ = Mode::Text;
      }
      return;
    }
    if (buf_[b] != '[' && buf_[b] != '{') {
      out.errors.push_back({"[TOOL_CALLS] must be followed by a JSON array", buf_.substr(b)});
      buf_.clear();
      mode_ = Mode::Text;
      return;
    }
    const size_t end = json_end(std::string_view(buf_).substr(b));
    if (end == std::string_view::npos) {
      if (final) {
        out.errors.push_back({"incomplete JSON after [TOOL_CALLS]", buf_.substr(b)});
        buf_.clear();
        mode_ = Mode::Text;
      }
      return;
    }
    add_call(std::string_view(buf_).substr(b, end), out);
    buf_.erase(0, b + end);
    mode_ = Mode::Text;
  }
}

void ToolCallParser::step(ToolCallDelta& out, bool final) {
  switch (syntax_) {
    case ToolCallSyntax::Hermes: step_hermes(out, final); break;
    case ToolCallSyntax::Llama3: step_llama(out, final); break;
    case ToolCallSyntax::Mistral: step_mistral(out, final); break;
  }
  if (mode_ == Mode::Call && buf_.size() > kMaxCallBytes) {
    out.errors.push_back({"tool call longer than 1 MiB", buf_.substr(0, 256)});
    buf_.clear();
    mode_ = Mode::Text;
  }
}

ToolCallDelta ToolCallParser::push(std::string_view chunk) {
  ToolCallDelta out;
  buf_.append(chunk);
  try {
    step(out, false);
  } catch (const std::exception& e) {  // allocation failure or a bug: report, never propagate
    out.errors.push_back({std::string("tool call parser: ") + e.what(), buf_});
    buf_.clear();
    mode_ = Mode::Text;
  }
  return out;
}

ToolCallDelta ToolCallParser::finish() {
  ToolCallDelta out;
  try {
    step(out, true);
  } catch (const std::exception& e) {
    out.errors.push_back({std::string("tool call parser: ") + e.what(), buf_});
  }
  buf_.clear();
  mode_ = Mode::Text;
  return out;
}

}  // namespace mnemo::engine
