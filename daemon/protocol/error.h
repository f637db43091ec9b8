#pragma once
// The error codes of docs/protocol.md and the exception the parser throws.
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mnemo::daemon::protocol {

enum class ErrorCode {
  InvalidJson,
  InvalidEvent,
  UnknownType,
  MissingField,
  InvalidField,
  FrameTooLarge,
  NotFound,
  Conflict,
  Busy,
  InvalidRequest,
  Overloaded,
  ShuttingDown,
  StorageFull,   // the disk under the store is full: the write was not saved
  StorageError,  // the store's file failed otherwise (I/O error, damaged, read-only, locked)
  Internal,      // last: the doc test walks every code up to it
};

std::string_view to_string(ErrorCode code);  // "invalid_json", ...
std::optional<ErrorCode> error_code_from_string(std::string_view s);

// A client event the parser refused. what() is the message for the client;
// field() the offending field's path ("" when none); event_id() the
// event's event_id when it could be read.
class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(ErrorCode code, const std::string& message, std::string field = {},
                std::optional<std::string> event_id = std::nullopt)
      : std::runtime_error(message), code_(code), field_(std::move(field)), event_id_(std::move(event_id)) {}

  ErrorCode code() const { return code_; }
  const std::string& field() const { return field_; }
  const std::optional<std::string>& event_id() const { return event_id_; }
  void set_event_id(std::optional<std::string> id) { event_id_ = std::move(id); }

 private:
  ErrorCode code_;
  std::string field_;
  std::optional<std::string> event_id_;
};

}  // namespace mnemo::daemon::protocol
