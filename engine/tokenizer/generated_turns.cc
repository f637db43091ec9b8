#include "engine/tokenizer/generated_turns.h"

#include <string_view>

namespace mnemo::engine {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

SplicedPrompt encode_with_generated(const PromptEncoder& enc, std::span<const ChatMessage> messages,
                                    const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                    std::span<const GeneratedTurn> turns) {
  SplicedPrompt out;
  const RenderedPrompt full = enc.render(messages, tools, add_generation_prompt);
  if (turns.empty() || (!full.shadow.empty() && full.shadow.size() != full.text.size())) {
    out.ids = enc.tokenize(full, &out.degraded);
    out.declined = out.degraded ? int(turns.size()) : 0;
    return out;
  }
  // Markers are looked for where only the template's own special texts are
  // left: the shadow blanks those inside client strings.
  const std::string_view markers = full.shadow.empty() ? std::string_view(full.text) : std::string_view(full.shadow);
  const std::vector<std::string> stops = enc.chat_template().stop_tokens();
  auto segment = [&](size_t from, size_t to) {
    RenderedPrompt p;
    p.text = full.text.substr(from, to - from);
    if (!full.shadow.empty()) p.shadow = full.shadow.substr(from, to - from);
    const std::vector<int32_t> ids = enc.tokenize(p);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  };

  size_t pos = 0;  // text before pos is in out.ids
  for (const GeneratedTurn& t : turns) {
    if (t.message >= messages.size() || messages[t.message].role != "assistant") {
      ++out.declined;
      continue;
    }
    // The turn's own prompt (what its KV began with) and the conversation
    // through the message, as prefixes of the whole rendering.
    const RenderedPrompt before = enc.render(messages.first(t.message), tools, true);
    const RenderedPrompt through = enc.render(messages.first(t.message + 1), tools, false);
    const size_t p = before.text.size();
    if (p < pos || !starts_with(full.text, through.text) || !starts_with(through.text, before.text)) {
      ++out.declined;
      continue;
    }
    // The message's body ends where the template closes the turn.
    size_t end = std::string_view::npos;
    for (const std::string& s : stops) {
      const size_t at = markers.substr(0, through.text.size()).find(s, p);
      if (at != std::string_view::npos && at < end) end = at;
    }
    if (end == std::string_view::npos) {
      ++out.declined;
      continue;
    }
    segment(pos, p);
    out.ids.insert(out.ids.end(), t.tokens.begin(), t.tokens.end());
    pos = end;
    ++out.spliced;
  }
  segment(pos, full.text.size());
  return out;
}

}  // namespace mnemo::engine
