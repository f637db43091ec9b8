// One WebSocket connection: text messages in to the WsHandler, and a bounded queue of
// outbound messages written one at a time on the connection's strand. Closes it starts
// (application, slow reader, server stop) are forced after close_timeout_ms. It holds the
// slot of max_connections its upgrade request was admitted with until it ends.

#include <deque>
#include <optional>

#include <spdlog/spdlog.h>

#include "daemon/net/detail/beast.h"
#include "daemon/net/detail/ws_handle.h"

namespace mnemo::daemon::net::detail {
namespace {

// A read buffer grown past this by one large message is shrunk once the message is handed on.
constexpr size_t kKeepBufferBytes = 64 << 10;

class WsSession final : public Session,
                        public WsSink,
                        public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(Context& ctx, uint64_t id, tcp::socket socket, Slot slot)
      : ctx_(ctx), id_(id), ws_(std::move(socket)), close_timer_(ws_.get_executor()),
        slot_(std::move(slot)), handle_(std::make_shared<WsHandle>(id, ctx.gate, ctx.outbound())) {}

  // Runs on the connection's strand (the socket keeps the executor it was accepted with).
  void start(HttpRequestMessage req) {
    handle_->attach(weak_from_this());
    const std::string target(req.target());
    handle_->set_path(target.substr(0, target.find('?')));
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = std::chrono::seconds(ctx_.options.ws_idle_timeout_s);
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "mnemod"); }));
    ws_.read_message_max(ctx_.options.max_frame_bytes);
    ws_.async_accept(req, [self = shared_from_this()](error_code ec) { self->on_accept(ec); });
  }

  void post_send(std::string text) override {
    on_strand([t = std::move(text)](WsSession& s) mutable {
      if (s.closing_) return s.handle_->message_done(t.size());
      s.out_.push_back(std::move(t));
      s.kick();
    });
  }
  void post_close(uint16_t code, std::string reason, bool drop_queue) override {
    on_strand([code, drop_queue, r = std::move(reason)](WsSession& s) mutable {
      if (drop_queue) {
        s.ctx_.log->debug("ws {}: outbound queue full, closing with {}", s.id_, code);
        s.drop_queue();
      }
      s.close_after_queue(code, std::move(r));
    });
  }

  void shutdown() override {
    on_strand([](WsSession& s) {
      if (!s.opened_) return s.cut();
      s.close_after_queue(static_cast<uint16_t>(websocket::close_code::going_away),
                          "server shutting down");
    });
  }
  void force_close() override { on_strand([](WsSession& s) { s.cut(); }); }
  void notify_closed() override {
    if (finished_) return;
    finished_ = true;
    handle_->mark_closed();
    if (opened_) tell_closed();
  }

 private:
  template <class F>
  void on_strand(F&& f) {
    asio::post(ws_.get_executor(),
               [self = shared_from_this(), f = std::forward<F>(f)]() mutable { f(*self); });
  }

  void on_accept(error_code ec) {
    if (ec) {
      ctx_.log->debug("ws {}: handshake failed: {}", id_, ec.message());
      return finish();
    }
    opened_ = true;
    ctx_.log->debug("ws {}: open", id_);
    try {
      ctx_.ws.on_open(handle_);
    } catch (const std::exception& e) {
      ctx_.log->error("ws {}: on_open threw: {}", id_, e.what());
    }
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, [self = shared_from_this()](error_code ec, size_t) {
      self->on_read(ec);
    });
  }

  void on_read(error_code ec) {
    if (ec) {
      if (closing_)
        ctx_.log->debug("ws {}: closed by the server ({})", id_, close_code_);
      else if (ec == websocket::error::closed)
        ctx_.log->debug("ws {}: closed by the client ({})", id_, ws_.reason().code);
      else
        ctx_.log->debug("ws {}: read ended: {}", id_, ec.message());
      return finish();
    }
    const size_t size = buffer_.size();
    if (!ws_.got_text()) {
      buffer_.consume(buffer_.size());
      drop_queue();
      begin_close(static_cast<uint16_t>(websocket::close_code::unknown_data),
                  "text frames only");
    } else {
      std::string text = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      if (!closing_) {
        try {
          ctx_.ws.on_message(handle_, std::move(text));
        } catch (const std::exception& e) {
          ctx_.log->error("ws {}: on_message threw: {}", id_, e.what());
        }
      }
    }
    if (buffer_.capacity() > kKeepBufferBytes) buffer_.shrink_to_fit();
    const size_t trim_after = ctx_.options.trim_after_bytes;
    if (trim_after > 0 && size >= trim_after && ctx_.large_message_done) ctx_.large_message_done();
    do_read();  // also carries the close handshake through
  }

  void kick() {
    if (writing_ || out_.empty() || closing_) return;
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(out_.front()),
                    [self = shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    writing_ = false;
    handle_->message_done(out_.front().size());
    out_.pop_front();
    if (ec) {
      if (!closing_) ctx_.log->debug("ws {}: write failed: {}", id_, ec.message());
      return cut();
    }
    if (!out_.empty())
      kick();
    else if (pending_close_)
      begin_close(pending_close_->first, std::move(pending_close_->second));
  }

  // Discards what is queued but not being written (the front is, while writing_).
  void drop_queue() {
    const size_t keep = writing_ ? 1 : 0;
    while (out_.size() > keep) {
      handle_->message_done(out_.back().size());
      out_.pop_back();
    }
  }

  void close_after_queue(uint16_t code, std::string reason) {
    handle_->mark_closed();
    if (closing_ || pending_close_) return;
    if (out_.empty() && !writing_) return begin_close(code, std::move(reason));
    pending_close_.emplace(code, std::move(reason));
    arm_close_timer();
  }

  void begin_close(uint16_t code, std::string reason) {
    if (closing_) return;
    closing_ = true;
    close_code_ = code;
    handle_->mark_closed();
    arm_close_timer();
    if (!ws_.is_open()) return;
    websocket::close_reason cr(code);
    cr.reason.assign(reason.data(), std::min(reason.size(), cr.reason.max_size()));
    // Beast lets this wait for a write in flight; the timer covers one that never ends.
    ws_.async_close(cr, [self = shared_from_this()](error_code ec) {
      if (ec) self->ctx_.log->debug("ws {}: close: {}", self->id_, ec.message());
    });
  }

  void arm_close_timer() {
    if (timer_armed_) return;
    timer_armed_ = true;
    close_timer_.expires_after(std::chrono::milliseconds(ctx_.options.close_timeout_ms));
    close_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->finished_) return;
      self->ctx_.log->debug("ws {}: close did not complete in time, cutting", self->id_);
      self->cut();
    });
  }

  void cut() {
    error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    handle_->mark_closed();
    close_timer_.cancel();
    drop_queue();
    cut();
    slot_.release();
    ctx_.registry.remove(id_);
    if (opened_) tell_closed();
  }

  void tell_closed() {
    try {
      ctx_.ws.on_close(handle_);
    } catch (const std::exception& e) {
      ctx_.log->error("ws {}: on_close threw: {}", id_, e.what());
    }
  }

  Context& ctx_;
  const uint64_t id_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  asio::steady_timer close_timer_;
  Slot slot_;
  std::shared_ptr<WsHandle> handle_;
  std::deque<std::string> out_;
  std::optional<std::pair<uint16_t, std::string>> pending_close_;
  uint16_t close_code_ = 0;  // the one we sent
  bool opened_ = false;
  bool writing_ = false;
  bool closing_ = false;   // no more writes: a close is under way
  bool timer_armed_ = false;
  bool finished_ = false;  // the read loop ended; on_close was called
};

}  // namespace

void start_ws_session(Context& ctx, uint64_t id, tcp::socket socket, HttpRequestMessage request,
                      Slot slot) {
  auto session = std::make_shared<WsSession>(ctx, id, std::move(socket), std::move(slot));
  ctx.registry.put(id, session);
  session->start(std::move(request));
}

}  // namespace mnemo::daemon::net::detail
