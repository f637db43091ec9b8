#include "plugins/logger.h"

namespace mnemo::plugins {

std::shared_ptr<spdlog::logger> named_logger(const char* name) {
  if (auto l = spdlog::get(name)) return l;
  try {
    auto def = spdlog::default_logger();
    auto l = std::make_shared<spdlog::logger>(name, def->sinks().begin(), def->sinks().end());
    l->set_level(def->level());
    spdlog::register_logger(l);
    return l;
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get(name);  // another thread registered it first
  }
}

}  // namespace mnemo::plugins
