#pragma once
// The two interfaces the application implements and the two handles it is given. The server
// calls handlers on its network threads (a connection's calls never overlap); handlers must
// not block. The handles are thread-safe: any thread may call them, and the work is posted
// to the connection's strand.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/net/http_message.h"

namespace mnemo::daemon::net {

// One HTTP request awaiting its answer: either respond() once, or begin_stream(), write()*,
// end() (chunked transfer, e.g. SSE). Dropping the last reference without answering sends
// a 500 (or cuts an open stream short, closing the connection).
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual void respond(HttpResponse r) = 0;
  virtual void begin_stream(int status, std::string content_type) = 0;
  // false once the client is gone, before begin_stream, after end(), or when the client
  // reads too slowly for the outbound bound (the connection is then closed).
  virtual bool write(std::string chunk) = 0;
  virtual void end() = 0;
  virtual bool closed() const = 0;
  // Called once, on a network thread, if the client vanishes (or the server stops) before the
  // answer is complete; called at once if that already happened. Must not block.
  virtual void on_close(std::function<void()> f) = 0;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual void handle(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) = 0;
};

class WsConnection {
 public:
  virtual ~WsConnection() = default;
  virtual uint64_t id() const = 0;
  // The path it was opened on (ServerOptions: ws_path or one of more_ws_paths).
  virtual std::string_view path() const { return {}; }
  // Queues one text message. false when the connection is closed or closing; a send over
  // the outbound bound closes the connection with 1013 (try again later) and returns false.
  virtual bool send(std::string text) = 0;
  // Closes after the messages already queued have been written.
  virtual void close(uint16_t code, std::string reason) = 0;
};

class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void on_open(std::shared_ptr<WsConnection> connection) = 0;
  virtual void on_message(const std::shared_ptr<WsConnection>& connection, std::string text) = 0;
  // Once per opened connection, whatever ended it (client, error, limit, server stop).
  virtual void on_close(const std::shared_ptr<WsConnection>& connection) = 0;
};

}  // namespace mnemo::daemon::net
