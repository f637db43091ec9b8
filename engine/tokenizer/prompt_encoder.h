// The one way a conversation becomes prompt tokens: rendered with its chat
// template, then tokenized so that no text from a client or a tool (message
// contents in every role, system prompts, tool results, names, ids, call
// arguments, tool names, descriptions and schemas, keys included) becomes a
// control token. Only the template's own markers are special.
//
// How: every untrusted string is copied with its special-token texts (and
// any head or tail that could join template text into one) blanked with a
// letter of the same length; that copy of the conversation renders into a
// "shadow" of the prompt. Templates only ever escape, indent or re-dump these
// strings, which keeps the lengths, so the template's markers sit at the same
// offsets in both texts, and a special token is matched only where the shadow
// agrees (Tokenizer::encode_with_shadow). Text around a marker is split out
// and tokenized just as HF tokenizers split around added tokens, so a prompt
// whose strings hold no special text tokenizes exactly as before.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace mnemo::engine {

struct RenderedPrompt {
  std::string text;
  // Empty when no untrusted string needed blanking: every special text in
  // `text` is then the template's.
  std::string shadow;
};

class PromptEncoder {
 public:
  // Keeps copies of both (they share their immutable models).
  PromptEncoder(ChatTemplate tmpl, Tokenizer tok);

  // Throws TokenizerError for a conversation the template rejects, or tools
  // nested deeper than kMaxToolsDepth.
  RenderedPrompt render(std::span<const ChatMessage> messages, const nlohmann::ordered_json& tools,
                        bool add_generation_prompt) const;
  // The prompt's ids. `degraded` is set when the template changed a
  // string's length so the shadow could not line up: the shadow itself is
  // tokenized then (untrusted special texts arrive blanked), never the text.
  std::vector<int32_t> tokenize(const RenderedPrompt& p, bool* degraded = nullptr) const;
  std::vector<int32_t> encode(std::span<const ChatMessage> messages, const nlohmann::ordered_json& tools,
                              bool add_generation_prompt) const {
    return tokenize(render(messages, tools, add_generation_prompt));
  }

  // Does the text hold a special token's text anywhere?
  bool holds_special_text(std::string_view text) const;
  // The copy of s as the shadow sees it; `changed` set when it differs.
  std::string blank(std::string_view s, bool& changed) const;
  char blank_char() const { return blank_; }
  const ChatTemplate& chat_template() const { return tmpl_; }

  static constexpr int kMaxToolsDepth = 128;

 private:
  nlohmann::ordered_json blank_json(const nlohmann::ordered_json& v, bool& changed, int depth) const;
  // Length of the longest special text at text[pos], 0 if none.
  size_t special_at(std::string_view text, size_t pos) const;

  ChatTemplate tmpl_;
  Tokenizer tok_;
  std::vector<std::string> specials_;  // longest first
  std::string first_bytes_;
  // Proper prefixes and suffixes of special texts: an untrusted string that
  // ends (starts) with one could complete a marker with template text.
  std::unordered_set<std::string> heads_, tails_;
  size_t longest_ = 0;
  char blank_ = 'x';
};

}  // namespace mnemo::engine
