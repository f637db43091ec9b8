#include "daemon/net/detail/context.h"

#include <spdlog/spdlog.h>

namespace mnemo::daemon::net::detail {

std::shared_ptr<spdlog::logger> net_logger() {
  if (auto l = spdlog::get("net")) return l;
  // Same sinks and level as the process's default logger, under our own name.
  auto l = spdlog::default_logger()->clone("net");
  try {
    spdlog::register_logger(l);
  } catch (const spdlog::spdlog_ex&) {  // another thread registered it first
    if (auto existing = spdlog::get("net")) return existing;
  }
  return l;
}

void Registry::put(uint64_t id, std::shared_ptr<Session> s) {
  std::shared_ptr<Session> old;
  std::lock_guard lock(m_);
  auto& slot = sessions_[id];
  old = std::move(slot);  // released after the lock, in case it was the last reference
  slot = std::move(s);
}

void Registry::remove(uint64_t id) {
  std::shared_ptr<Session> gone;
  {
    std::lock_guard lock(m_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    gone = std::move(it->second);
    sessions_.erase(it);
    if (sessions_.empty()) empty_.notify_all();
  }
}

size_t Registry::size() const {
  std::lock_guard lock(m_);
  return sessions_.size();
}

std::vector<std::shared_ptr<Session>> Registry::snapshot() const {
  std::lock_guard lock(m_);
  std::vector<std::shared_ptr<Session>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

bool Registry::wait_empty_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(m_);
  return empty_.wait_until(lock, deadline, [&] { return sessions_.empty(); });
}

void Registry::clear() {
  std::unordered_map<uint64_t, std::shared_ptr<Session>> gone;
  std::lock_guard lock(m_);
  gone.swap(sessions_);
  empty_.notify_all();
}

}  // namespace mnemo::daemon::net::detail
