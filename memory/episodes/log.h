#pragma once
// The "episodes" logger: why episodes were re-clustered, what changed, low-confidence routes.
#include <memory>

#include <spdlog/spdlog.h>

namespace mnemo::memory::episodes {

// The named logger, created on first use with the default logger's sinks and level.
std::shared_ptr<spdlog::logger> logger();

}  // namespace mnemo::memory::episodes
