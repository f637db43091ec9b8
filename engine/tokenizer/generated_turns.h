// Prompts that give the model back its own tokens. A client sends an
// assistant turn back as the API returned it (content and parsed tool calls);
// the template re-serialises that, and the tokens differ from those the
// model generated, so the KV the previous turn left (prompt + generated)
// matches only up to the re-rendered turn. Given the tokens each earlier
// assistant message was generated as, the prompt is built from the template's
// text around those messages and the generated tokens in their place: the
// next turn of an agent program then finds its whole previous KV.
//
// A message is spliced only where the template renders the conversation
// prefix-stably (the prompt of that turn, then the message, then the rest,
// each a prefix of the next) and closes the message with one of its stop
// tokens; otherwise it renders as usual. With no generated turns the result
// equals PromptEncoder::encode.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/tokenizer/prompt_encoder.h"

namespace mnemo::engine {

struct GeneratedTurn {
  size_t message = 0;                 // index of an assistant message
  std::span<const int32_t> tokens;    // what the model generated for it, stop token excluded
};

struct SplicedPrompt {
  std::vector<int32_t> ids;
  int spliced = 0;   // messages given as generated
  int declined = 0;  // generated turns the template's rendering did not allow
  bool degraded = false;  // as PromptEncoder::tokenize's flag (nothing spliced then)
};

// turns: in increasing message order. Throws what PromptEncoder::render throws.
SplicedPrompt encode_with_generated(const PromptEncoder& enc, std::span<const ChatMessage> messages,
                                    const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                    std::span<const GeneratedTurn> turns);

}  // namespace mnemo::engine
