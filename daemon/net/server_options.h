#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mnemo::daemon::net {

struct ServerOptions {
  std::string host = "127.0.0.1";  // an address or a resolvable name
  uint16_t port = 8420;            // 0: an ephemeral port, see Server::port()
  int threads = 2;                 // network threads; handlers run on them
  size_t max_body_bytes = 4 << 20;    // larger request bodies get 413
  size_t max_header_bytes = 16 << 10;
  size_t max_frame_bytes = 1 << 20;   // larger WebSocket messages close the socket with 1009
  // Per connection, WebSocket messages or HTTP stream chunks not yet written to the socket.
  size_t max_outbound_messages = 1024;
  size_t max_outbound_bytes = 16 << 20;
  size_t max_connections = 1024;   // more are answered 503 and closed
  std::string api_key;             // non-empty: Bearer auth on everything but /healthz
  std::string ws_path = "/v1/ws";
  int request_timeout_s = 30;      // to receive one request (and idle keep-alive); to write
  int ws_idle_timeout_s = 300;     // silence before Beast's keep-alive ping gives up
  int close_timeout_ms = 5000;     // a close we start is forced after this long
};

}  // namespace mnemo::daemon::net
