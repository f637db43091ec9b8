#include "daemon/protocol/error.h"

#include <array>
#include <utility>

namespace mnemo::daemon::protocol {

namespace {
constexpr std::array<std::pair<ErrorCode, std::string_view>, 15> kNames = {{
    {ErrorCode::InvalidJson, "invalid_json"},
    {ErrorCode::InvalidEvent, "invalid_event"},
    {ErrorCode::UnknownType, "unknown_type"},
    {ErrorCode::MissingField, "missing_field"},
    {ErrorCode::InvalidField, "invalid_field"},
    {ErrorCode::FrameTooLarge, "frame_too_large"},
    {ErrorCode::NotFound, "not_found"},
    {ErrorCode::Conflict, "conflict"},
    {ErrorCode::Busy, "busy"},
    {ErrorCode::InvalidRequest, "invalid_request"},
    {ErrorCode::Overloaded, "overloaded"},
    {ErrorCode::ShuttingDown, "shutting_down"},
    {ErrorCode::StorageFull, "storage_full"},
    {ErrorCode::StorageError, "storage_error"},
    {ErrorCode::Internal, "internal"},
}};
}  // namespace

std::string_view to_string(ErrorCode code) {
  for (const auto& [c, name] : kNames)
    if (c == code) return name;
  return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view s) {
  for (const auto& [c, name] : kNames)
    if (name == s) return c;
  return std::nullopt;
}

}  // namespace mnemo::daemon::protocol
