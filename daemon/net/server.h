#pragma once
// mnemod's HTTP/1.1 and WebSocket listener (Boost.Beast, hidden behind this interface).
//
// Routes: an upgrade request to options.ws_path becomes a WebSocket for the WsHandler (other
// upgrade targets get 404; ws_path without an upgrade gets 426); every other request goes to
// the HttpHandler. With an api_key, everything but /healthz needs "Authorization: Bearer KEY".
// Connection admission (pending budget, header deadline, slots) is described in
// server_options.h.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "daemon/net/handlers.h"
#include "daemon/net/server_options.h"

namespace mnemo::daemon::net {

class Server {
 public:
  // The handlers must outlive stop().
  Server(ServerOptions options, HttpHandler& http, WsHandler& ws);
  ~Server();  // stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts the threads; throws std::runtime_error naming host:port.
  void start();
  // The bound port (the ephemeral one when options.port was 0); valid after start().
  uint16_t port() const;
  // Open connections, HTTP and WebSocket.
  size_t connections() const;
  // Of those, the ones holding no slot: before or between requests (see ServerOptions).
  size_t pending_connections() const;
  // Slots of max_connections taken by requests being served and open WebSockets.
  size_t slots_in_use() const;
  // Stops accepting; lets in-flight HTTP answers finish and closes WebSockets with 1001 after
  // their queued messages are written, for up to `drain`; then cuts what is left, calls the
  // remaining on_close callbacks and joins the threads. Handles held by the application
  // report closed afterwards. Idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(2));

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnemo::daemon::net
