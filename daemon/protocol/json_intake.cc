#include "daemon/protocol/json_intake.h"

#include "engine/tokenizer/json_shape.h"

namespace mnemo::daemon::protocol {

std::string json_error_message(const std::exception& e) {
  const std::string what = e.what();
  if (what.starts_with("[json.exception.")) {
    const size_t close = what.find("] ");
    if (close != std::string::npos) return what.substr(close + 2);
  }
  return what;
}

Json parse_client_json(std::string_view text, const IntakeLimits& limits) {
  using Kind = IntakeError::Kind;
  if (text.size() > limits.max_bytes)
    throw IntakeError(Kind::TooLarge, "message of " + std::to_string(text.size()) + " bytes is over the limit of " +
                                          std::to_string(limits.max_bytes));
  const engine::JsonShape shape = engine::json_shape(text, limits.max_depth, limits.max_elements);
  if (shape.depth > limits.max_depth)
    throw IntakeError(Kind::TooDeep, "invalid JSON: nested deeper than " + std::to_string(limits.max_depth) + " levels");
  if (shape.elements > limits.max_elements)
    throw IntakeError(Kind::TooManyElements,
                      "invalid JSON: more than " + std::to_string(limits.max_elements) + " elements");
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw IntakeError(Kind::Invalid, "invalid JSON: " + json_error_message(e));
  }
}

}  // namespace mnemo::daemon::protocol
