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

bool Slots::try_acquire() {
  size_t used = used_.load();
  do {
    if (used >= limit_) return false;
  } while (!used_.compare_exchange_weak(used, used + 1));
  return true;
}

void Slots::release() { used_.fetch_sub(1); }

uint64_t PendingSet::enter(std::weak_ptr<Session> s, size_t* evicted) {
  std::vector<std::shared_ptr<Session>> out;
  uint64_t ticket = 0;
  {
    std::lock_guard lock(m_);
    while (waiting_.size() >= limit_) {
      auto oldest = waiting_.begin();
      if (auto victim = oldest->second.lock()) out.push_back(std::move(victim));
      waiting_.erase(oldest);
    }
    ticket = ++next_ticket_;
    waiting_.emplace(ticket, std::move(s));
  }
  for (auto& v : out) v->force_close();  // posts; the session sees its ticket gone
  if (evicted) *evicted = out.size();
  return ticket;
}

bool PendingSet::leave(uint64_t ticket) {
  std::lock_guard lock(m_);
  return waiting_.erase(ticket) == 1;
}

size_t PendingSet::size() const {
  std::lock_guard lock(m_);
  return waiting_.size();
}

bool RateLimit::due() {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_.load();
  if (last != 0 && now - last < period_.count()) return false;
  return last_.compare_exchange_strong(last, now);
}

}  // namespace mnemo::daemon::net::detail
