#pragma once
// The Responses API's WebSocket mode, on /v1/responses: each `response.create`
// message carries POST /v1/responses' fields and gets the same events as the
// SSE stream, as WebSocket messages. Responses run one at a time per
// connection, in the order asked; a chain continues by previous_response_id.
#include <memory>
#include <mutex>
#include <unordered_map>

#include "daemon/app/app_metrics.h"
#include "daemon/app/responses_api.h"
#include "daemon/app/worker_pool.h"
#include "daemon/net/handlers.h"

namespace mnemo::daemon::app {

class ResponsesWs : public net::WsHandler {
 public:
  ResponsesWs(ResponsesApi& api, WorkerPool& pool, AppMetrics& metrics, size_t max_frame_bytes);
  void on_open(std::shared_ptr<net::WsConnection> connection) override;
  void on_message(const std::shared_ptr<net::WsConnection>& connection, std::string text) override;
  void on_close(const std::shared_ptr<net::WsConnection>& connection) override;

 private:
  struct Connection;
  class Events;
  void create(const std::shared_ptr<Connection>& c, const std::string& text);

  ResponsesApi& api_;
  WorkerPool& pool_;
  AppMetrics& metrics_;
  size_t max_frame_bytes_;
  std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
};

// Sends each WebSocket connection to the handler of the path it was opened on.
class WsRouter : public net::WsHandler {
 public:
  void add(std::string path, net::WsHandler& handler) { handlers_.emplace_back(std::move(path), &handler); }
  void on_open(std::shared_ptr<net::WsConnection> connection) override { of(*connection).on_open(connection); }
  void on_message(const std::shared_ptr<net::WsConnection>& connection, std::string text) override {
    of(*connection).on_message(connection, std::move(text));
  }
  void on_close(const std::shared_ptr<net::WsConnection>& connection) override { of(*connection).on_close(connection); }

 private:
  // The net layer only opens sockets on the paths it was given; the first
  // handler is the default (ServerOptions::ws_path).
  net::WsHandler& of(const net::WsConnection& c) {
    for (auto& [path, h] : handlers_)
      if (path == c.path()) return *h;
    return *handlers_.front().second;
  }
  std::vector<std::pair<std::string, net::WsHandler*>> handlers_;
};

}  // namespace mnemo::daemon::app
