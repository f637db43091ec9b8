#include "engine/tokenizer/chat_template.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "engine/tokenizer/chat_custom.h"
#include "engine/tokenizer/chat_render.h"
#include "engine/tokenizer/json_shape.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/utf8.h"

namespace mnemo::engine {

namespace chat {

std::string trim(std::string_view s) {
  // Python's str.isspace also counts the information separators 0x1C-0x1F.
  auto space = [](char32_t c) { return unicode::is_whitespace(c) || (c >= 0x1C && c <= 0x1F); };
  size_t b = 0, e = s.size();
  while (b < e) {
    size_t len;
    if (!space(utf8::decode(s, b, len))) break;
    b += len;
  }
  while (e > b) {
    size_t start = e - 1;
    while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len;
    if (!space(utf8::decode(s, start, len))) break;
    e = start;
  }
  return std::string(s.substr(b, e - b));
}

nlohmann::ordered_json arguments_value(const std::string& arguments) {
  // Rendering walks the parsed value recursively: a client's string nested
  // deeper than any real call stays a string.
  if (!json_nesting_within(arguments, kMaxEmbeddedJsonDepth)) return nlohmann::ordered_json(arguments);
  auto parsed = nlohmann::ordered_json::parse(arguments, nullptr, false);
  if (parsed.is_discarded()) return nlohmann::ordered_json(arguments);
  return parsed;
}

}  // namespace chat

struct ChatTemplate::Impl {
  enum class Kind { Llama3, Llama31, ChatML, Mistral, Custom } kind;
  chat::CustomTemplate custom;
  std::string date_string = "26 Jul 2024";
  std::string default_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
};

ChatTemplate ChatTemplate::builtin(std::string_view family) {
  auto impl = std::make_shared<Impl>();
  if (family == "llama3") impl->kind = Impl::Kind::Llama3;
  else if (family == "llama3.1") impl->kind = Impl::Kind::Llama31;
  else if (family == "chatml") impl->kind = Impl::Kind::ChatML;
  else if (family == "mistral") impl->kind = Impl::Kind::Mistral;
  else throw TokenizerError("unknown chat template family '" + std::string(family) +
                            "' (built in: llama3, llama3.1, chatml, mistral; or pass --chat-template FILE)");
  return ChatTemplate(std::move(impl));
}

ChatTemplate ChatTemplate::from_json(const nlohmann::json& spec, std::string_view source) {
  auto impl = std::make_shared<Impl>();
  impl->kind = Impl::Kind::Custom;
  impl->custom = chat::CustomTemplate::parse(spec, std::string(source));
  return ChatTemplate(std::move(impl));
}

namespace {

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw TokenizerError(p.string() + ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  auto j = nlohmann::json::parse(buf.str(), nullptr, false);
  if (j.is_discarded()) throw TokenizerError(p.string() + ": not valid JSON");
  return j;
}

// Every token text tokenizer_config.json mentions: bos/eos/pad/unk (plain or
// {"content": ...}) and added_tokens_decoder entries.
void collect_tokens(const nlohmann::json& config, std::vector<std::string>& out) {
  for (const char* key : {"bos_token", "eos_token", "pad_token", "unk_token"}) {
    if (!config.contains(key)) continue;
    const auto& v = config[key];
    if (v.is_string()) out.push_back(v.get<std::string>());
    else if (v.is_object() && v.contains("content") && v["content"].is_string()) out.push_back(v["content"].get<std::string>());
  }
  if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
    for (const auto& [_, t] : config["added_tokens_decoder"].items()) {
      if (t.is_object() && t.contains("content") && t["content"].is_string()) out.push_back(t["content"].get<std::string>());
    }
  }
  if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
    for (const auto& t : config["additional_special_tokens"]) {
      if (t.is_string()) out.push_back(t.get<std::string>());
    }
  }
}

std::optional<std::string> family_from_template_text(const std::string& t) {
  if (t.find("<|im_start|>") != std::string::npos) return "chatml";
  if (t.find("[INST]") != std::string::npos) return "mistral";
  if (t.find("<|start_header_id|>") != std::string::npos) {
    const bool tools = t.find("Environment: ipython") != std::string::npos || t.find("Cutting Knowledge Date") != std::string::npos;
    return tools ? "llama3.1" : "llama3";
  }
  return std::nullopt;
}

std::optional<std::string> family_from_tokens(const std::vector<std::string>& tokens) {
  auto has = [&](std::string_view t) { return std::find(tokens.begin(), tokens.end(), t) != tokens.end(); };
  if (has("<|start_header_id|>")) return has("<|python_tag|>") || has("<|eom_id|>") ? "llama3.1" : "llama3";
  if (has("<|im_start|>")) return "chatml";
  if (has("[INST]")) return "mistral";
  return std::nullopt;
}

}  // namespace

ChatTemplate ChatTemplate::from_file(const std::filesystem::path& file) {
  return from_json(read_json(file), file.string());
}

ChatTemplate ChatTemplate::for_model(const std::filesystem::path& dir) {
  std::string architecture = "unknown";
  if (std::filesystem::exists(dir / "config.json")) {
    const auto config = read_json(dir / "config.json");
    if (config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty() &&
        config["architectures"][0].is_string())
      architecture = config["architectures"][0].get<std::string>();
  }
  std::optional<std::string> family;
  std::vector<std::string> tokens;
  std::string template_text;
  if (std::filesystem::exists(dir / "tokenizer_config.json")) {
    const auto tc = read_json(dir / "tokenizer_config.json");
    if (tc.contains("chat_template")) {
      // A string, or a list of {"name", "template"} (default, tool_use, ...).
      std::string text;
      const auto& ct = tc["chat_template"];
      if (ct.is_string()) text = ct.get<std::string>();
      for (const auto& named : ct.is_array() ? ct : nlohmann::json::array()) {
        if (named.is_object() && named.contains("template") && named["template"].is_string())
          text += named["template"].get<std::string>();
      }
      family = family_from_template_text(text);
      template_text = std::move(text);
    }
    collect_tokens(tc, tokens);
  }
  if (!family) family = family_from_tokens(tokens);
  if (!family && std::filesystem::exists(dir / "tokenizer.json")) {
    const auto tj = read_json(dir / "tokenizer.json");
    if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
      for (const auto& t : tj["added_tokens"]) {
        if (t.is_object() && t.contains("content") && t["content"].is_string()) tokens.push_back(t["content"].get<std::string>());
      }
    }
    family = family_from_tokens(tokens);
  }
  if (!family) {
    // Without markers the architecture decides where it is unambiguous.
    if (architecture == "Qwen2ForCausalLM") family = "chatml";
    else if (architecture == "MistralForCausalLM") family = "mistral";
  }
  if (!family)
    throw TokenizerError(dir.string() + ": cannot tell the chat template family (architecture " + architecture +
                         ", no llama3/chatml/mistral markers in tokenizer_config.json or tokenizer.json); "
                         "pass --chat-template FILE");
  auto tmpl = builtin(*family);
  // Qwen2's template defaults to a generic system prompt, Qwen2.5's to "You
  // are Qwen..."; the text tells them apart.
  if (*family == "chatml" && template_text.find("You are Qwen") == std::string::npos &&
      template_text.find("You are a helpful assistant.") != std::string::npos)
    tmpl.impl_->default_system = "You are a helpful assistant.";
  return tmpl;
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, const nlohmann::ordered_json& tools,
                                 bool add_generation_prompt) const {
  static const nlohmann::ordered_json kNoTools = nlohmann::ordered_json::array();
  if (!tools.is_null() && !tools.is_array()) throw TokenizerError("chat template: tools must be an array");
  const chat::RenderInput in{messages, tools.is_null() ? kNoTools : tools, add_generation_prompt, impl_->date_string,
                             impl_->default_system};
  switch (impl_->kind) {
    case Impl::Kind::Llama3: return chat::render_llama3(in);
    case Impl::Kind::Llama31: return chat::render_llama3_1(in);
    case Impl::Kind::ChatML: return chat::render_chatml(in);
    case Impl::Kind::Mistral: return chat::render_mistral(in);
    case Impl::Kind::Custom: return impl_->custom.render(in);
  }
  return {};
}

std::string ChatTemplate::family() const {
  switch (impl_->kind) {
    case Impl::Kind::Llama3: return "llama3";
    case Impl::Kind::Llama31: return "llama3.1";
    case Impl::Kind::ChatML: return "chatml";
    case Impl::Kind::Mistral: return "mistral";
    case Impl::Kind::Custom: return impl_->custom.name;
  }
  return {};
}

std::vector<std::string> ChatTemplate::stop_tokens() const {
  switch (impl_->kind) {
    case Impl::Kind::Llama3: return {"<|eot_id|>", "<|end_of_text|>"};
    case Impl::Kind::Llama31: return {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};
    case Impl::Kind::ChatML: return {"<|im_end|>", "<|endoftext|>"};
    case Impl::Kind::Mistral: return {"</s>"};
    case Impl::Kind::Custom: return impl_->custom.stop;
  }
  return {};
}

void ChatTemplate::set_date_string(std::string date) {
  // Copies share Impl; a changed date must not leak into them.
  impl_ = std::make_shared<Impl>(*impl_);
  impl_->date_string = std::move(date);
}

}  // namespace mnemo::engine
