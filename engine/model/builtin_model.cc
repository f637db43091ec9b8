#include "engine/model/builtin_model.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "engine/model/generator.h"

namespace mnemo::engine {

namespace fs = std::filesystem;

fs::path default_home() {
  if (const char* h = std::getenv("MNEMO_HOME"); h && *h) return h;
  if (const char* u = std::getenv("HOME"); u && *u) return fs::path(u) / ".cache" / "mnemo";
  return fs::temp_directory_path() / "mnemo";
}

fs::path ensure_builtin_model(const fs::path& home) {
  const fs::path dir = home / "models" / "default";
  if (fs::exists(dir / "config.json")) return dir;
  spdlog::info("generating the built-in model into {} (one time)", dir.string());
  const fs::path tmp = home / "models" / ("default.tmp" + std::to_string(::getpid()));
  GeneratorOptions o;  // the defaults are the built-in model
  generate_model(o, tmp);
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec) {
    // Another process finished first: keep its copy.
    fs::remove_all(tmp);
    if (!fs::exists(dir / "config.json")) throw fs::filesystem_error("cannot place the built-in model", dir, ec);
  }
  return dir;
}

}  // namespace mnemo::engine
