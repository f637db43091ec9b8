#pragma once
// OpenAI's POST /v1/responses body, parsed into what a response needs.
// Throws BadRequest naming the field (OpenAI's `param`).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/app/response_format.h"
#include "daemon/app/response_spec.h"
#include "daemon/protocol/json.h"
#include "daemon/protocol/json_intake.h"
#include "engine/tokenizer/chat_template.h"

namespace mnemo::daemon::app {

// previous_response_id names no stored response: OpenAI's code
// "previous_response_not_found", which clients check before resending the
// whole context.
class PreviousResponseNotFound : public BadRequest {
 public:
  explicit PreviousResponseNotFound(const std::string& id)
      : BadRequest("Previous response with id '" + id + "' not found.", "previous_response_id") {}
};

struct ResponsesRequest {
  std::string model;
  std::vector<engine::ChatMessage> input;  // the new items, as messages, in order
  std::optional<std::string> instructions;  // a system message for this response only
  protocol::Json tools = protocol::Json::array();  // chat-completions shape, for the ResponseSpec
  ToolChoiceMode tool_choice = ToolChoiceMode::None;
  std::string function;  // ToolChoiceMode::Function
  protocol::Sampling sampling;
  std::optional<std::string> previous_response_id;
  bool store = true;
  bool stream = false;
  // Echoed back in the response object as the client sent them.
  protocol::Json echo_tools = protocol::Json::array();
  protocol::Json echo_tool_choice = "auto";
  bool parallel_tool_calls = true;
  protocol::Json metadata = protocol::Json::object();
  std::string truncation = "disabled";
  protocol::Json text = {{"format", {{"type", "text"}}}};
  ResponseFormat format;  // from text.format
  protocol::Json context_management;  // null when absent
};

ResponsesRequest parse_responses_request(std::string_view body, const protocol::IntakeLimits& limits);
ResponsesRequest parse_responses_request(const protocol::Json& body);

}  // namespace mnemo::daemon::app
