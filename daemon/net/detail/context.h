#pragma once
// What every connection of one server shares. No Boost here: the application-facing handles
// include this too.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
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

struct OutboundLimits {
  size_t messages;
  size_t bytes;
};

struct Context {
  Context(ServerOptions o, HttpHandler& h, WsHandler& w)
      : options(std::move(o)), http(h), ws(w), gate(std::make_shared<Gate>()),
        log(net_logger()) {}
  OutboundLimits outbound() const {
    return {options.max_outbound_messages, options.max_outbound_bytes};
  }

  const ServerOptions options;
  HttpHandler& http;
  WsHandler& ws;
  std::shared_ptr<Gate> gate;
  Registry registry;
  std::shared_ptr<spdlog::logger> log;
};

}  // namespace mnemo::daemon::net::detail
