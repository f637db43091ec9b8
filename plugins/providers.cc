#include "plugins/providers.h"

#include "plugins/command_provider.h"
// The provider classes land one by one; each joins once its header exists.
#if __has_include("plugins/mcp/mcp_server.h")
#include "plugins/mcp/mcp_server.h"
#define MNEMO_HAS_MCP 1
#endif
#if __has_include("plugins/plugin_loader.h")
#include "plugins/plugin_loader.h"
#define MNEMO_HAS_PLUGIN_LOADER 1
#endif

namespace mnemo::plugins {

std::unique_ptr<ToolRegistry> make_registry(const ToolsConfig& config) {
  auto reg = std::make_unique<ToolRegistry>(config.defaults);
#ifdef MNEMO_HAS_MCP
  for (const auto& c : config.mcp_servers) reg->add(std::make_unique<mcp::McpServer>(c), c.limits);
#else
  if (!config.mcp_servers.empty()) throw ToolsConfigError("MCP servers are not supported by this build");
#endif
#ifdef MNEMO_HAS_PLUGIN_LOADER
  for (const auto& c : config.plugins) reg->add(std::make_unique<PluginLibrary>(c), c.limits);
#else
  if (!config.plugins.empty()) throw ToolsConfigError("plugins are not supported by this build");
#endif
  for (const auto& c : config.commands) reg->add(std::make_unique<CommandTool>(c), c.limits);
  return reg;
}

}  // namespace mnemo::plugins
