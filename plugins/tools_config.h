#pragma once
// The --tools file: which MCP servers, plugins and commands mnemod may run,
// and the limits of each tool. Nothing runs that this file does not name.
//
// {
//   "mcpServers": {"fs": {"command": "npx", "args": [...], "env": {...}, "cwd": "...",
//                         "limits": {...}, "tool_limits": {"read_file": {...}}}},
//   "plugins":    {"example": {"path": "/abs/libx.so", "config": {...}, "limits": {...}, "tool_limits": {...}}},
//   "commands":   {"word_count": {"argv": ["wc", "-w"], "description": "...", "parameters": {schema},
//                                 "env": {"K": "V"}, "env_allow": ["PATH"], "cwd": "/tmp", "limits": {...}}},
//   "limits":     {"timeout_ms": 30000, "max_output_bytes": 262144, "concurrency": 4}
// }
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "plugins/tool.h"

namespace mnemo::plugins {

// A bad tools file: the message names the file and the field
// ("tools.json: mcpServers.fs.args[1]: expected a string").
class ToolsConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ToolLimits {
  std::chrono::milliseconds timeout{30000};
  size_t max_output_bytes = 256 * 1024;
  int concurrency = 4;  // calls of this tool running at once; more wait (until their deadline)
};

// Each field present overrides the one below it.
struct LimitsPatch {
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<size_t> max_output_bytes;
  std::optional<int> concurrency;
  ToolLimits apply(ToolLimits base) const;
};

struct ProviderLimits {
  LimitsPatch all;                              // "limits": every tool of the provider
  std::map<std::string, LimitsPatch> by_tool;   // "tool_limits": by the provider's own tool name
};

struct McpServerConfig {
  std::string name;                          // the key under mcpServers
  std::vector<std::string> argv;             // command, then args
  std::map<std::string, std::string> env;    // on top of a small default environment
  std::string cwd;                           // empty: mnemod's
  ProviderLimits limits;
};

struct PluginConfig {
  std::string name;
  std::filesystem::path path;  // the shared library (absolute, or relative to the tools file)
  Json config = Json::object();  // handed to the plugin's init as JSON text
  ProviderLimits limits;
};

struct CommandConfig {
  std::string name;  // the tool's name
  std::string description;
  Json parameters = Json{{"type", "object"}, {"properties", Json::object()}};
  // Elements may hold {arg} placeholders, replaced by the argument's value
  // (a string as is, anything else as JSON text); the arguments also arrive
  // as one JSON object on stdin.
  std::vector<std::string> argv;
  std::vector<std::string> env_allow = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"};
  std::map<std::string, std::string> env;
  std::string cwd;
  ProviderLimits limits;
};

struct ToolsConfig {
  std::filesystem::path file;
  std::vector<McpServerConfig> mcp_servers;
  std::vector<PluginConfig> plugins;
  std::vector<CommandConfig> commands;
  ToolLimits defaults;  // built-in defaults patched by the top-level "limits"
};

// Throws ToolsConfigError naming the file and the field.
ToolsConfig load_tools_config(const std::filesystem::path& file);
ToolsConfig parse_tools_config(const std::string& text, const std::filesystem::path& file);

}  // namespace mnemo::plugins
