#include "engine/tokenizer/prompt_encoder.h"

#include <algorithm>

namespace mnemo::engine {

PromptEncoder::PromptEncoder(ChatTemplate tmpl, Tokenizer tok) : tmpl_(std::move(tmpl)), tok_(std::move(tok)) {
  for (int32_t id = 0; id < tok_.vocab_size(); ++id)
    if (tok_.is_added(id) && tok_.is_special(id) && !tok_.id_to_token(id).empty())
      specials_.push_back(tok_.id_to_token(id));
  std::sort(specials_.begin(), specials_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const std::string& t : specials_) {
    if (first_bytes_.find(t[0]) == std::string::npos) first_bytes_ += t[0];
    longest_ = std::max(longest_, t.size());
    for (size_t n = 1; n < t.size(); ++n) {
      heads_.insert(t.substr(0, n));
      tails_.insert(t.substr(t.size() - n));
    }
  }
  // A letter no special text holds: runs of it can never form a marker, and
  // no template escapes, trims or widens it.
  for (char c : std::string_view("xqzjkvwXQZJKVW")) {
    if (std::none_of(specials_.begin(), specials_.end(), [c](const auto& t) { return t.find(c) != std::string::npos; })) {
      blank_ = c;
      break;
    }
  }
}

size_t PromptEncoder::special_at(std::string_view text, size_t pos) const {
  for (const std::string& t : specials_)
    if (text.compare(pos, t.size(), t) == 0) return t.size();
  return 0;
}

bool PromptEncoder::holds_special_text(std::string_view text) const {
  for (size_t at = text.find_first_of(first_bytes_); at != std::string_view::npos;
       at = text.find_first_of(first_bytes_, at + 1))
    if (special_at(text, at)) return true;
  return false;
}

std::string PromptEncoder::blank(std::string_view s, bool& changed) const {
  std::string out;
  auto fill = [&](size_t from, size_t n) {
    if (out.empty()) out.assign(s);
    std::fill_n(out.begin() + std::ptrdiff_t(from), n, blank_);
    changed = true;
  };
  if (first_bytes_.empty()) return std::string(s);
  for (size_t at = s.find_first_of(first_bytes_); at != std::string_view::npos;) {
    if (const size_t n = special_at(s, at)) {
      fill(at, n);
      at = s.find_first_of(first_bytes_, at + n);
    } else {
      at = s.find_first_of(first_bytes_, at + 1);
    }
  }
  // The longest head (tail) that could join the template text after (before) it.
  for (size_t n = std::min(longest_ - 1, s.size()); n > 0; --n)
    if (heads_.count(std::string(s.substr(s.size() - n)))) {
      fill(s.size() - n, n);
      break;
    }
  for (size_t n = std::min(longest_ - 1, s.size()); n > 0; --n)
    if (tails_.count(std::string(s.substr(0, n)))) {
      fill(0, n);
      break;
    }
  return out.empty() ? std::string(s) : out;
}

nlohmann::ordered_json PromptEncoder::blank_json(const nlohmann::ordered_json& v, bool& changed, int depth) const {
  if (depth > kMaxToolsDepth)
    throw TokenizerError("tool definitions nested deeper than " + std::to_string(kMaxToolsDepth) + " levels");
  if (v.is_string()) return blank(v.get_ref<const std::string&>(), changed);
  if (v.is_array()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& x : v) out.push_back(blank_json(x, changed, depth + 1));
    return out;
  }
  if (v.is_object()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (auto it = v.begin(); it != v.end(); ++it) out[blank(it.key(), changed)] = blank_json(it.value(), changed, depth + 1);
    return out;
  }
  return v;
}

RenderedPrompt PromptEncoder::render(std::span<const ChatMessage> messages, const nlohmann::ordered_json& tools,
                                     bool add_generation_prompt) const {
  RenderedPrompt out;
  bool changed = false;
  std::vector<ChatMessage> shadow_messages;
  shadow_messages.reserve(messages.size());
  for (const ChatMessage& m : messages) {
    ChatMessage b;
    b.role = m.role;  // one of four names the template checks, never free text
    b.content = blank(m.content, changed);
    b.tool_call_id = blank(m.tool_call_id, changed);
    b.name = blank(m.name, changed);
    for (const ToolCall& c : m.tool_calls)
      b.tool_calls.push_back({blank(c.id, changed), blank(c.name, changed), blank(c.arguments, changed)});
    shadow_messages.push_back(std::move(b));
  }
  nlohmann::ordered_json shadow_tools = blank_json(tools, changed, 0);
  out.text = tmpl_.render(messages, tools, add_generation_prompt);
  if (changed) out.shadow = tmpl_.render(shadow_messages, shadow_tools, add_generation_prompt);
  return out;
}

std::vector<int32_t> PromptEncoder::tokenize(const RenderedPrompt& p, bool* degraded) const {
  if (degraded) *degraded = false;
  if (p.shadow.empty()) return tok_.encode(p.text, false);
  if (p.shadow.size() == p.text.size()) return tok_.encode_with_shadow(p.text, p.shadow);
  if (degraded) *degraded = true;
  return tok_.encode(p.shadow, false);
}

}  // namespace mnemo::engine
