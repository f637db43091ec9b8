#include "daemon/store/records.h"

#include "daemon/store/errors.h"

namespace mnemo::daemon::store {

std::string_view role_name(Role r) {
  switch (r) {
    case Role::System: return "system";
    case Role::User: return "user";
    case Role::Assistant: return "assistant";
    case Role::Tool: return "tool";
  }
  throw InvalidRecord("role: value " + std::to_string(static_cast<int>(r)) + " out of range");
}

Role parse_role(std::string_view s) {
  if (s == "system") return Role::System;
  if (s == "user") return Role::User;
  if (s == "assistant") return Role::Assistant;
  if (s == "tool") return Role::Tool;
  throw InvalidRecord("role: '" + std::string(s) + "' is not one of system, user, assistant, tool");
}

std::string_view tool_status_name(ToolStatus s) {
  switch (s) {
    case ToolStatus::Ok: return "ok";
    case ToolStatus::Error: return "error";
  }
  throw InvalidRecord("tool status: value " + std::to_string(static_cast<int>(s)) + " out of range");
}

ToolStatus parse_tool_status(std::string_view s) {
  if (s == "ok") return ToolStatus::Ok;
  if (s == "error") return ToolStatus::Error;
  throw InvalidRecord("tool status: '" + std::string(s) + "' is not one of ok, error");
}

}  // namespace mnemo::daemon::store
