#pragma once
// What every connection of one server shares. No Boost here: the application-facing handles
// include this too.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daemon/net/handlers.h"
#include "daemon/net/server_options.h"

namespace spdlog {
class logger;
}

namespace mnemo::daemon::net::detail {

std::shared_ptr<spdlog::logger> net_logger();

// Lets application threads reach a connection only while the server runs, so that nothing
// is posted to an io_context whose threads have been joined (or that is being destroyed).
class Gate {
 public:
  template <class F>
  bool if_open(F&& f) {
    std::shared_lock lock(m_);
    if (!open_) return false;
    f();
    return true;
  }
  void close() {
    std::unique_lock lock(m_);
    open_ = false;
  }

 private:
  std::shared_mutex m_;
  bool open_ = true;
};

// A live connection as the server sees it when stopping.
class Session {
 public:
  virtual ~Session() = default;
  virtual void shutdown() = 0;        // finish what is in flight, then close (posts)
  virtual void force_close() = 0;     // cut the socket now (posts)
  virtual void notify_closed() = 0;   // threads joined: tell the application it is gone
};

// Owns every open connection, so that stop() can reach them and knows when all are gone.
class Registry {
 public:
  uint64_t next_id() { return next_id_.fetch_add(1) + 1; }
  void put(uint64_t id, std::shared_ptr<Session> s);  // adds, or replaces on upgrade
  void remove(uint64_t id);
  size_t size() const;
  std::vector<std::shared_ptr<Session>> snapshot() const;
  bool wait_empty_until(std::chrono::steady_clock::time_point deadline);
  void clear();

 private:
  std::atomic<uint64_t> next_id_{0};
  mutable std::mutex m_;
  std::condition_variable empty_;
  std::unordered_map<uint64_t, std::shared_ptr<Session>> sessions_;
};

// The max_connections budget: one slot per request being served and per open WebSocket.
class Slots {
 public:
  explicit Slots(size_t limit) : limit_(limit) {}
  bool try_acquire();
  void release();
  size_t in_use() const { return used_.load(); }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

// One held slot, released once: by release() or on destruction. Moves with the connection
// when an HTTP session becomes a WebSocket.
class Slot {
 public:
  Slot() = default;
  static Slot take(Slots& slots) { return Slot(slots.try_acquire() ? &slots : nullptr); }
  Slot(Slot&& o) noexcept : slots_(std::exchange(o.slots_, nullptr)) {}
  Slot& operator=(Slot&& o) noexcept {
    if (this != &o) {
      release();
      slots_ = std::exchange(o.slots_, nullptr);
    }
    return *this;
  }
  ~Slot() { release(); }
  explicit operator bool() const { return slots_ != nullptr; }
  void release() {
    if (slots_) std::exchange(slots_, nullptr)->release();
  }

 private:
  explicit Slot(Slots* s) : slots_(s) {}
  Slots* slots_ = nullptr;
};

// Connections that hold no slot (not yet past their request head, or idle between keep-alive
// requests), oldest first: when the budget is full the one that has waited longest goes, so
// that a flood of idle or trickling sockets cannot keep a prompt client out.
class PendingSet {
 public:
  explicit PendingSet(size_t limit) : limit_(limit < 1 ? 1 : limit) {}
  // Adds `s`; returns its ticket (never 0). Sessions pushed out to make room are
  // force_close()d and counted in `evicted`.
  uint64_t enter(std::weak_ptr<Session> s, size_t* evicted = nullptr);
  // false when the ticket was evicted meanwhile (its force_close is on its way).
  bool leave(uint64_t ticket);
  size_t size() const;

 private:
  const size_t limit_;
  mutable std::mutex m_;
  uint64_t next_ticket_ = 0;
  std::map<uint64_t, std::weak_ptr<Session>> waiting_;  // by ticket: oldest first
};

// true at most once per `period` across threads: for warnings a flood would repeat endlessly.
class RateLimit {
 public:
  explicit RateLimit(std::chrono::milliseconds period) : period_(period) {}
  bool due();

 private:
  const std::chrono::milliseconds period_;
  std::atomic<int64_t> last_{0};  // steady_clock ms of the last `true`
};

struct OutboundLimits {
  size_t messages;
  size_t bytes;
};

struct Context {
  Context(ServerOptions o, HttpHandler& h, WsHandler& w)
      : options(std::move(o)), http(h), ws(w), gate(std::make_shared<Gate>()),
        log(net_logger()), slots(options.max_connections),
        pending(options.max_pending_connections) {}
  OutboundLimits outbound() const {
    return {options.max_outbound_messages, options.max_outbound_bytes};
  }

  const ServerOptions options;
  HttpHandler& http;
  WsHandler& ws;
  std::shared_ptr<Gate> gate;
  Registry registry;
  std::shared_ptr<spdlog::logger> log;
  Slots slots;
  PendingSet pending;
  RateLimit busy_warning{std::chrono::seconds(10)};
  RateLimit eviction_warning{std::chrono::seconds(10)};
  // A message of at least options.trim_after_bytes was handled: the server returns freed heap
  // to the system soon (set by the server before any connection exists).
  std::function<void()> large_message_done;
};

}  // namespace mnemo::daemon::net::detail
