#pragma once
// What a response is asked to do, independent of the API it came through.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

struct ResponseSpec {
  std::vector<engine::ChatMessage> messages;
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();  // OpenAI tool definitions
  ToolChoiceMode tool_choice = ToolChoiceMode::Auto;
  std::string function;  // ToolChoiceMode::Function
  protocol::Sampling sampling;
  uint64_t cache_salt = 0;
};

}  // namespace mnemo::daemon::app
