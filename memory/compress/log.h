#pragma once
// The "compress" logger: what each compaction kept and dropped, and why.
#include <memory>

#include <spdlog/spdlog.h>

namespace mnemo::memory::compress {

// The named logger, created on first use with the default logger's sinks and level.
std::shared_ptr<spdlog::logger> logger();

}  // namespace mnemo::memory::compress
