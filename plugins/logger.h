#pragma once
// The named spdlog loggers of plugins/ ("tools", "mcp"), sharing the
// default logger's sinks and level, created on first use.
#include <memory>

#include <spdlog/spdlog.h>

namespace mnemo::plugins {

std::shared_ptr<spdlog::logger> named_logger(const char* name);

}  // namespace mnemo::plugins
