#pragma once
// The built-in small model: generated once (random weights, real HF layout)
// under a home directory, so `mnemo` and `mnemod` need nothing downloaded.
#include <filesystem>

namespace mnemo::engine {

// $MNEMO_HOME, else ~/.cache/mnemo, else a folder under the temp directory.
std::filesystem::path default_home();

// home/models/default, generated there first if absent (atomically: a
// half-written model is never left under the final name).
std::filesystem::path ensure_builtin_model(const std::filesystem::path& home);

}  // namespace mnemo::engine
