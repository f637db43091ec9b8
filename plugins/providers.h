#pragma once
// The registry of every tool a --tools file names: one provider per MCP
// server, plugin and command, with its limits. Nothing else is ever run.
#include <memory>

#include "plugins/tool_registry.h"
#include "plugins/tools_config.h"

namespace mnemo::plugins {

// Not started: call start() on the result.
std::unique_ptr<ToolRegistry> make_registry(const ToolsConfig& config);

}  // namespace mnemo::plugins
