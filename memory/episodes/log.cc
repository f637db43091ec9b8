#include "memory/episodes/log.h"

namespace mnemo::memory::episodes {

std::shared_ptr<spdlog::logger> logger() {
  if (auto l = spdlog::get("episodes")) return l;
  try {
    auto def = spdlog::default_logger();
    auto l = std::make_shared<spdlog::logger>("episodes", def->sinks().begin(), def->sinks().end());
    l->set_level(def->level());
    spdlog::register_logger(l);
    return l;
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("episodes");  // another thread registered it first
  }
}

}  // namespace mnemo::memory::episodes
