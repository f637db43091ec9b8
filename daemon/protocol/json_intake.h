#pragma once
// The one door for JSON from clients, WebSocket frames and HTTP bodies
// alike: size, nesting depth and element count are checked in one pass over
// the bytes before the parser, or anything recursive (copies, dumps,
// comparisons, template rendering), sees the document. The limits are
// docs/security.md's.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "daemon/protocol/json.h"
#include "daemon/protocol/limits.h"

namespace mnemo::daemon::protocol {

struct IntakeLimits {
  size_t max_bytes = kDefaultMaxFrameBytes;
  int max_depth = kMaxDepth;
  size_t max_elements = kMaxElements;
};

class IntakeError : public std::runtime_error {
 public:
  enum class Kind { TooLarge, TooDeep, TooManyElements, Invalid };
  IntakeError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// Throws IntakeError with a message fit for the client.
Json parse_client_json(std::string_view text, const IntakeLimits& limits);

// nlohmann's what() without its "[json.exception.parse_error.101] " prefix.
std::string json_error_message(const std::exception& e);

}  // namespace mnemo::daemon::protocol
