#pragma once
// What mcp_server.cc and mcp_server_streams.cc share; private to them.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "plugins/logger.h"
#include "plugins/mcp/mcp_server.h"
#include "plugins/tool.h"

namespace mnemo::plugins::mcp::detail {

// A reader notices its stop request within this.
constexpr int kPollMs = 100;
// An exiting server closes stdout a moment before it can be reaped.
constexpr auto kExitGrace = std::chrono::milliseconds(1000);
// Answers to the server's own requests and cancellations are best effort.
constexpr auto kSideWriteTimeout = std::chrono::milliseconds(2000);

inline std::shared_ptr<spdlog::logger> logger() { return named_logger("mcp"); }

inline long long ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

inline std::string cut(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  return std::string(s.substr(0, n)) + "... (" + std::to_string(s.size()) + " bytes)";
}

}  // namespace mnemo::plugins::mcp::detail

namespace mnemo::plugins::mcp {

// A request waiting for its answer, filled by the stdout reader.
struct McpServer::Pending {
  bool done = false;
  Message reply;
  std::optional<ToolResult> failure;
};

struct McpServer::Reply {
  std::optional<ToolResult> failure;  // set: no response
  Message msg;                        // Result or Error
  int64_t id = 0;
  uint64_t gen = 0;
};

}  // namespace mnemo::plugins::mcp
