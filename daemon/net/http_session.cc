// One HTTP/1.1 connection: reads a request, routes it (auth, upgrade, 426/404), hands it to
// the HttpHandler as an Exchange, writes the answer, and reads the next one (keep-alive,
// no pipelining). While the application works on an answer a one-shot read watches the
// socket, so a client that vanishes is noticed before anything is written to it.
//
// Admission (see ServerOptions): the connection is pending, and may be pushed out by newer
// ones, until a request head arrives in time (header_timeout_s) and passes routing and auth;
// then that request holds a slot of max_connections until its answer is written, with
// request_timeout_s for its body. Routing errors (401, 404, 426) and /healthz are answered
// from the pending state, so an unauthenticated client never holds a slot.

#include <deque>
#include <optional>

#include <spdlog/spdlog.h>

#include "daemon/net/detail/beast.h"
#include "daemon/net/detail/http_exchange.h"
#include "daemon/net/error_body.h"
#include "daemon/net/http_wire.h"
#include "daemon/net/routing.h"

namespace mnemo::daemon::net::detail {
namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr size_t kMaxDrainBytes = 1 << 20;  // what a closing connection may still receive
// A read buffer grown past this by one large request is shrunk before the connection idles.
constexpr size_t kKeepBufferBytes = 64 << 10;

bool is_parse_error(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

class HttpSession final : public Session,
                          public ExchangeSink,
                          public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Context& ctx, uint64_t id, tcp::socket socket)
      : ctx_(ctx), id_(id), stream_(std::move(socket)) {}

  // Called on the acceptor's strand: the session's own work, which other sessions' evictions
  // may already target, runs on its strand.
  void start() { on_strand([](HttpSession& s) { s.open(); }); }

  void shutdown() override { on_strand([](HttpSession& s) { s.on_shutdown(); }); }
  void force_close() override { on_strand([](HttpSession& s) { s.hard_close(); }); }
  void notify_closed() override { lose_exchange(); }

  void post_response(uint64_t seq, std::string bytes, bool close) override {
    on_strand([seq, close, b = std::move(bytes)](HttpSession& s) mutable {
      if (s.stale(seq) || s.answer_complete_) return;
      if (close) s.keep_alive_ = false;
      s.answer_complete_ = true;
      s.push(std::move(b), 0);
    });
  }
  void post_stream_bytes(uint64_t seq, std::string bytes, size_t counted) override {
    on_strand([seq, counted, b = std::move(bytes)](HttpSession& s) mutable {
      if (!s.stale(seq) && !s.answer_complete_) s.push(std::move(b), counted);
    });
  }
  void post_stream_end(uint64_t seq) override {
    on_strand([seq](HttpSession& s) {
      if (s.stale(seq) || s.answer_complete_) return;
      s.answer_complete_ = true;
      s.push(std::string(kLastChunk), 0);
    });
  }
  void post_abandon(uint64_t seq, bool streaming) override {
    on_strand([seq, streaming](HttpSession& s) {
      if (s.stale(seq) || s.answer_complete_) return;
      s.ctx_.log->warn("conn {}: request dropped by the application without an answer", s.id_);
      s.answer_complete_ = true;
      if (streaming) {
        s.keep_alive_ = false;  // a stream cut short must not look complete
        s.kick();
      } else {
        s.push(serialize_response(error_response(500, "the request was dropped unanswered",
                                                 "server_error"),
                                  s.keep_alive_),
               0);
      }
    });
  }
  void post_overflow(uint64_t seq) override {
    on_strand([seq](HttpSession& s) {
      if (s.stale(seq)) return;
      s.ctx_.log->debug("conn {}: client reads the stream too slowly, closing", s.id_);
      s.hard_close();
    });
  }

 private:
  void open() {
    if (closed_) return;  // stopped or evicted before it ran
    error_code ec;
    ctx_.log->debug("conn {}: open from {}", id_,
                    stream_.socket().remote_endpoint(ec).address().to_string());
    enter_pending();
    do_read();
  }

  template <class F>
  void on_strand(F&& f) {
    asio::post(stream_.get_executor(),
               [self = shared_from_this(), f = std::forward<F>(f)]() mutable { f(*self); });
  }
  bool stale(uint64_t seq) const { return closed_ || !in_exchange_ || seq != seq_; }

  void do_read() {
    if (closed_ || closing_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(ctx_.options.max_header_bytes));
    parser_->body_limit(ctx_.options.max_body_bytes);
    stream_.expires_after(std::chrono::seconds(ctx_.options.header_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) {
                              self->on_header(ec);
                            });
  }

  // Joins the pending set (no-op when already in it), giving back a slot held for the last
  // request: idle keep-alive connections wait there too.
  void enter_pending() {
    slot_.release();
    if (ticket_ != 0 || closed_) return;
    size_t evicted = 0;
    ticket_ = ctx_.pending.enter(weak_from_this(), &evicted);
    if (evicted > 0 && ctx_.eviction_warning.due())
      ctx_.log->warn("{} connections pending (max-pending-connections): closing the oldest to "
                     "admit new ones (idle or slow clients?)",
                     ctx_.options.max_pending_connections);
  }

  // false: the pending budget pushed this connection out meanwhile (force_close is posted).
  bool leave_pending() {
    if (ticket_ == 0) return true;
    return ctx_.pending.leave(std::exchange(ticket_, 0));
  }

  void on_header(error_code ec) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    const std::string_view target = sv(req.target());
    const std::string_view path = target.substr(0, target.find('?'));
    const bool upgrade = websocket::is_upgrade(req);
    const Route route =
        route_request(path, upgrade, sv(req[http::field::authorization]), ctx_.options);
    // Answered from the head, so the body was never read: the connection cannot be reused.
    const bool body_unread = !parser_->is_done();
    if (route != Route::kHandler && route != Route::kWebSocket)
      return reply(route_error(route, path), body_unread || upgrade);
    // Supervisors must tell "busy" from "dead": /healthz is answered without a slot.
    if (route == Route::kWebSocket || path != "/healthz") {
      Slot slot = Slot::take(ctx_.slots);
      if (!slot) {
        if (ctx_.busy_warning.due())
          ctx_.log->warn("connection limit {} reached, refusing requests with 503",
                         ctx_.options.max_connections);
        return reply(error_response(503, "too many connections", "server_error", "server_busy"),
                     true);
      }
      if (!leave_pending()) return hard_close();
      slot_ = std::move(slot);
    }
    stream_.expires_after(std::chrono::seconds(ctx_.options.request_timeout_s));
    if (iequals(sv(parser_->get()[http::field::expect]), "100-continue") && !parser_->is_done()) {
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec) return self->hard_close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (ec) return self->on_read_error(ec);
                       const size_t trim_after = self->ctx_.options.trim_after_bytes;
                       self->large_ = trim_after > 0 && self->parser_->get().body().size() >= trim_after;
                       self->route(self->parser_->release());
                     });
  }

  void on_read_error(error_code ec) {
    if (closed_) return;
    if (ec == http::error::body_limit)
      return reply(error_response(413,
                                  "request body exceeds " +
                                      std::to_string(ctx_.options.max_body_bytes) + " bytes",
                                  "invalid_request_error", "request_too_large"),
                   true);
    if (ec == http::error::header_limit)
      return reply(error_response(431, "request headers too large"), true);
    if (is_parse_error(ec) && ec != http::error::end_of_stream)
      return reply(error_response(400, "malformed HTTP request: " + ec.message()), true);
    if (ec != http::error::end_of_stream)
      ctx_.log->debug("conn {}: read ended: {}", id_, ec.message());
    hard_close();
  }

  void route(HttpRequestMessage req) {
    keep_alive_ = req.keep_alive();
    const std::string_view target = sv(req.target());
    const std::string_view path = target.substr(0, target.find('?'));
    const Route route = route_request(path, websocket::is_upgrade(req),
                                      sv(req[http::field::authorization]), ctx_.options);
    switch (route) {
      case Route::kHandler:
        return dispatch(std::move(req));
      case Route::kWebSocket:
        if (stopping_)
          return reply(error_response(503, "server is shutting down", "server_error"), true);
        closed_ = true;  // the socket now belongs to the WebSocket session
        return start_ws_session(ctx_, id_, stream_.release_socket(), std::move(req),
                                std::move(slot_));
      case Route::kUpgradeRequired:
        return reply(route_error(route, path), false);
      case Route::kUnauthorized:
      case Route::kNoSuchSocket:
        // A refused upgrade leaves the client expecting a different protocol: close.
        return reply(route_error(route, path), websocket::is_upgrade(req));
    }
  }

  void dispatch(HttpRequestMessage req) {
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& field : req)
      r.headers.emplace_back(lowercase(sv(field.name_string())), std::string(field.value()));
    r.body = std::move(req.body());

    begin_exchange();
    auto ex = std::make_shared<Exchange>(ctx_.gate, weak_from_this(), seq_, ctx_.outbound(),
                                         keep_alive_ && !stopping_);
    exchange_ = ex;
    start_monitor();
    try {
      ctx_.http.handle(r, ex);
    } catch (const std::exception& e) {
      ctx_.log->error("conn {}: handler threw on {} {}: {}", id_, r.method, r.target, e.what());
      ex->respond(error_response(500, "internal error", "server_error"));
    }
  }

  // An answer produced by the server itself (errors, 426), written like an exchange's.
  void reply(HttpResponse r, bool close) {
    if (close) keep_alive_ = false;
    begin_exchange();
    answer_complete_ = true;
    push(serialize_response(r, keep_alive_ && !stopping_), 0);
  }

  void begin_exchange() {
    in_exchange_ = true;
    answer_complete_ = false;
    ++seq_;
  }

  void start_monitor() {
    monitoring_ = true;
    stream_.expires_never();
    stream_.async_read_some(buffer_.prepare(1024),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              self->on_monitor(ec, n);
                            });
  }

  void on_monitor(error_code ec, size_t n) {
    monitoring_ = false;
    if (closed_) return;
    if (!ec || ec == asio::error::operation_aborted) {
      buffer_.commit(n);  // a pipelined request, parsed once this answer is out
      if (!in_exchange_) next_request();
      return;
    }
    if (in_exchange_)
      ctx_.log->debug("conn {}: client gone before its answer was complete: {}", id_,
                      ec.message());
    hard_close();
  }

  void push(std::string bytes, size_t counted) {
    if (closed_) return;
    if (!bytes.empty()) out_.push_back({std::move(bytes), counted});
    kick();
  }

  void kick() {
    if (writing_ || closed_) return;
    if (out_.empty()) {
      if (in_exchange_ && answer_complete_) finish_exchange();
      return;
    }
    writing_ = true;
    stream_.expires_after(std::chrono::seconds(ctx_.options.request_timeout_s));
    asio::async_write(stream_, asio::buffer(out_.front().bytes),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->on_write(ec);
                      });
  }

  void on_write(error_code ec) {
    writing_ = false;
    if (ec) {
      if (!closed_) ctx_.log->debug("conn {}: write failed: {}", id_, ec.message());
      return hard_close();
    }
    const size_t counted = out_.front().counted;
    out_.pop_front();
    if (counted > 0)
      if (auto ex = exchange_.lock()) ex->chunk_written(counted);
    kick();
  }

  void finish_exchange() {
    in_exchange_ = false;
    exchange_.reset();
    release_memory();
    enter_pending();
    if (monitoring_) {
      error_code ec;
      stream_.socket().cancel(ec);  // on_monitor goes on with the next request
      return;
    }
    next_request();
  }

  void next_request() {
    if (keep_alive_ && !stopping_)
      do_read();
    else
      graceful_close();
  }

  // Half-close and read what the client still sends, so that the kernel does not answer
  // unread data with a reset that could destroy our last response in flight.
  void graceful_close() {
    if (closed_ || closing_) return;
    closing_ = true;
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return hard_close();
    stream_.expires_after(std::chrono::seconds(2));
    drain();
  }

  void drain() {
    drained_ += buffer_.size();
    buffer_.consume(buffer_.size());
    if (drained_ > kMaxDrainBytes) return hard_close();
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (ec) return self->hard_close();
                              self->buffer_.commit(n);
                              self->drain();
                            });
  }

  void on_shutdown() {
    stopping_ = true;
    if (!in_exchange_) hard_close();  // idle, or mid-way through reading a request
  }

  // Nothing of a finished request stays allocated for the life of a keep-alive connection.
  void release_memory() {
    parser_.reset();
    if (buffer_.capacity() > kKeepBufferBytes) buffer_.shrink_to_fit();
    if (std::exchange(large_, false) && ctx_.large_message_done) ctx_.large_message_done();
  }

  void hard_close() {
    if (closed_) return;
    closed_ = true;
    stream_.close();
    if (!writing_) out_.clear();
    slot_.release();
    leave_pending();
    if (std::exchange(large_, false) && ctx_.large_message_done) ctx_.large_message_done();
    lose_exchange();
    ctx_.log->debug("conn {}: closed", id_);
    ctx_.registry.remove(id_);
  }

  void lose_exchange() {
    if (!in_exchange_) return;
    if (auto ex = exchange_.lock()) ex->connection_lost();
  }

  struct Out {
    std::string bytes;
    size_t counted;  // chunk bytes that count against the outbound bound
  };

  Context& ctx_;
  const uint64_t id_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<Out> out_;
  std::weak_ptr<Exchange> exchange_;
  Slot slot_;              // held from an admitted request head until its answer is written
  uint64_t ticket_ = 0;    // in the pending set while non-zero
  uint64_t seq_ = 0;
  size_t drained_ = 0;
  bool writing_ = false;
  bool in_exchange_ = false;    // a request was read; its answer is not fully written
  bool answer_complete_ = false;
  bool monitoring_ = false;
  bool keep_alive_ = true;
  bool stopping_ = false;
  bool closing_ = false;        // half-closed, draining
  bool closed_ = false;         // socket closed or handed to a WebSocket session
  bool large_ = false;          // the request in progress had a body of trim_after_bytes or more
};

}  // namespace

void start_http_session(Context& ctx, tcp::socket socket) {
  const uint64_t id = ctx.registry.next_id();
  auto session = std::make_shared<HttpSession>(ctx, id, std::move(socket));
  ctx.registry.put(id, session);
  session->start();
}

}  // namespace mnemo::daemon::net::detail
