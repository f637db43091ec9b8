#include "memory/compress/log.h"

namespace mnemo::memory::compress {

std::shared_ptr<spdlog::logger> logger() {
  if (auto l = spdlog::get("compress")) return l;
  try {
    auto def = spdlog::default_logger();
    auto l = std::make_shared<spdlog::logger>("compress", def->sinks().begin(), def->sinks().end());
    l->set_level(def->level());
    spdlog::register_logger(l);
    return l;
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("compress");  // another thread registered it first
  }
}

}  // namespace mnemo::memory::compress
