#pragma once
// What the application-facing handles call on their connection. Implemented by the Beast
// sessions; every method only posts to the connection's strand, so it is safe from any
// thread (the handles call them inside the Gate).

#include <cstddef>
#include <cstdint>
#include <string>

namespace mnemo::daemon::net::detail {

class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  // `seq` names the exchange, so that a late call from an old one is ignored.
  virtual void post_response(uint64_t seq, std::string bytes, bool close) = 0;
  virtual void post_stream_bytes(uint64_t seq, std::string bytes, size_t counted) = 0;
  virtual void post_stream_end(uint64_t seq) = 0;
  // The exchange was dropped unanswered (500) or mid-stream (the connection is cut).
  virtual void post_abandon(uint64_t seq, bool streaming) = 0;
  virtual void post_overflow(uint64_t seq) = 0;
};

class WsSink {
 public:
  virtual ~WsSink() = default;
  virtual void post_send(std::string text) = 0;
  // drop_queue: close now, discarding what is queued (a reader too slow for the bound).
  virtual void post_close(uint16_t code, std::string reason, bool drop_queue) = 0;
};

}  // namespace mnemo::daemon::net::detail
