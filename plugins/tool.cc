#include "plugins/tool.h"

namespace mnemo::plugins {

const char* to_string(Failure f) {
  switch (f) {
    case Failure::None: return "none";
    case Failure::Timeout: return "timeout";
    case Failure::Cancelled: return "cancelled";
    case Failure::TooLarge: return "too_large";
    case Failure::Crashed: return "crashed";
    case Failure::Unavailable: return "unavailable";
    case Failure::InvalidOutput: return "invalid_output";
    case Failure::Busy: return "busy";
    case Failure::Unknown: return "unknown_tool";
  }
  return "?";
}

}  // namespace mnemo::plugins
