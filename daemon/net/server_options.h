#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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
  // Admission, in two budgets. A connection is *pending* until it has sent a complete request
  // head (with the bearer when api_key is set): pending ones have header_timeout_s to send it
  // and at most max_pending_connections exist; a new one past that closes the one pending the
  // longest, so idle or slow sockets cannot lock out a client that sends its request promptly.
  // Only a request that passed that (and a WebSocket) holds one of max_connections slots, until
  // its answer is written or the WebSocket closes; over the limit it gets 503. Between
  // keep-alive requests a connection is pending again. /healthz never needs a slot.
  size_t max_connections = 1024;
  size_t max_pending_connections = 256;
  int header_timeout_s = 5;        // to send a request head: on a new or an idle keep-alive connection
  std::string api_key;             // non-empty: Bearer auth on everything but /healthz
  std::string ws_path = "/v1/ws";
  // More WebSocket endpoints; unlike ws_path, a plain request to one of
  // them goes to the HttpHandler (POST /v1/responses and its WebSocket mode
  // share a path).
  std::vector<std::string> more_ws_paths;
  int request_timeout_s = 30;      // to receive a request body once its head is in; to write
  int ws_idle_timeout_s = 300;     // silence before Beast's keep-alive ping gives up
  int close_timeout_ms = 5000;     // a close we start is forced after this long
  // A request or WebSocket message at least this large asks glibc to hand freed memory back to
  // the system (malloc_trim) shortly after it is done, at most once a second; 0: never.
  size_t trim_after_bytes = 1 << 20;
};

}  // namespace mnemo::daemon::net
