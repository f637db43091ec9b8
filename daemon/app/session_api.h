#pragma once
// The WebSocket session protocol of docs/protocol.md: each connection's
// events run in arrival order on the worker pool (SQLite commits block), and
// responses stream back from the Responder.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "daemon/app/app_metrics.h"
#include "daemon/app/responder.h"
#include "daemon/app/worker_pool.h"
#include "daemon/net/handlers.h"
#include "daemon/net/server_options.h"
#include "daemon/protocol/client_events.h"
#include "daemon/protocol/server_events.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::app {

struct SessionApiOptions {
  size_t max_frame_bytes = 1 << 20;
  int64_t max_sessions = 4096;
  // The net layer's per-connection bound: no one reply may come near it.
  size_t max_outbound_bytes = net::ServerOptions{}.max_outbound_bytes;
};

class Continuum;

class SessionApi : public net::WsHandler {
 public:
  // continuum (optional) hears program and tool events (exact tool timings).
  SessionApi(SessionApiOptions opt, store::Store& store, Responder& responder, WorkerPool& pool, AppMetrics& metrics,
             Continuum* continuum = nullptr);

  void on_open(std::shared_ptr<net::WsConnection> connection) override;
  void on_message(const std::shared_ptr<net::WsConnection>& connection, std::string text) override;
  void on_close(const std::shared_ptr<net::WsConnection>& connection) override;
  // New events are refused with shutting_down from now on.
  void stop_accepting() { stopping_ = true; }

 private:
  struct Connection;
  struct Running {
    std::string session_id;
    engine::RequestId request = 0;
    uint64_t connection = 0;
  };
  class Sink;

  void handle(Connection& c, const protocol::ClientEvent& event);
  void send(Connection& c, const protocol::ServerEvent& e);
  protocol::Session load_session(const std::string& id);
  void create_response(Connection& c, const protocol::ResponseCreate& e);
  void finish_response(const std::string& response_id);
  ResponseSpec spec_for(const protocol::Session& s, const protocol::Sampling& overrides);

  SessionApiOptions opt_;
  store::Store& store_;
  Responder& responder_;
  WorkerPool& pool_;
  AppMetrics& metrics_;
  Continuum* continuum_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> session_count_;  // stored sessions, for --max-sessions

  std::mutex mu_;
  std::condition_variable finished_;  // a response left running_
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
  std::unordered_map<std::string, Running> running_;        // by response id
  std::unordered_map<std::string, std::string> busy_;       // session id -> response id
};

}  // namespace mnemo::daemon::app
