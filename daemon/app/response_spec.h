#pragma once
// What a response is asked to do, independent of the API it came through.
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/app/response_format.h"
#include "daemon/protocol/sampling.h"
#include "engine/tokenizer/chat_template.h"

namespace mnemo::daemon::app {

// A request that cannot be served as asked (the client's mistake).
class BadRequest : public std::runtime_error {
 public:
  BadRequest(std::string message, std::string field = "")
      : std::runtime_error(std::move(message)), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

enum class ToolChoiceMode { None, Auto, Required, Function };

// The agent program a response belongs to, as the client named it. Without
// a key the daemon infers one (daemon/app/program_tracker.h).
struct ProgramRef {
  std::string key;         // "ws:<program_id>" or "job:<job_id>"; empty: none given
  bool last_step = false;  // Continuum's is_last_step: no tool call follows this turn
  std::optional<std::string> this_func_call;  // Continuum: the tool this turn calls
};

// OpenAI's sampling fields that the WebSocket protocol does not carry (the
// chat-completions API sets them; engine::SamplingParams documents them).
struct TokenSampling {
  float frequency_penalty = 0, presence_penalty = 0;  // [-2, 2]
  std::map<int32_t, float> logit_bias;                // token id -> [-100, 100]
  bool logprobs = false;
  int32_t top_logprobs = 0;  // [0, 20]; needs logprobs
};

struct ResponseSpec {
  std::vector<engine::ChatMessage> messages;
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();  // OpenAI tool definitions
  ToolChoiceMode tool_choice = ToolChoiceMode::Auto;
  std::string function;  // ToolChoiceMode::Function
  // The answer's shape. Beside tools under tool_choice auto the model may
  // still call one tool instead (Responder::start).
  ResponseFormat format;
  protocol::Sampling sampling;
  TokenSampling token_sampling;
  uint64_t cache_salt = 0;
  ProgramRef program;
  // POST /v1/completions: the prompt's tokens as given, with no chat
  // template (messages and tools are then unused).
  std::optional<std::vector<int32_t>> raw_prompt;
};

}  // namespace mnemo::daemon::app
