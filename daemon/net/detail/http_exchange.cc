#include "daemon/net/detail/http_exchange.h"

#include <utility>

#include "daemon/net/http_wire.h"

namespace mnemo::daemon::net::detail {

Exchange::Exchange(std::shared_ptr<Gate> gate, std::weak_ptr<ExchangeSink> sink, uint64_t seq,
                   OutboundLimits limits, bool keep_alive)
    : gate_(std::move(gate)), sink_(std::move(sink)), seq_(seq), limits_(limits),
      keep_alive_(keep_alive) {}

Exchange::~Exchange() {
  const int phase = phase_.load();
  if (phase == kDone || closed_.load()) return;
  reach([&](ExchangeSink& s) { s.post_abandon(seq_, phase == kStreaming); });
}

template <class F>
bool Exchange::reach(F&& f) {
  bool reached = false;
  gate_->if_open([&] {
    if (auto s = sink_.lock()) {
      f(*s);
      reached = true;
    }
  });
  if (!reached) closed_ = true;
  return reached;
}

bool Exchange::advance(Phase from, Phase to) {
  int expected = from;
  if (!phase_.compare_exchange_strong(expected, to)) return false;
  if (to == kDone) {
    // The answer is complete: a callback capturing this exchange must not keep it alive.
    std::function<void()> drop;
    std::lock_guard lock(m_);
    drop.swap(on_close_);
  }
  return true;
}

void Exchange::respond(HttpResponse r) {
  if (!advance(kFresh, kDone) || closed_) return;
  const bool close = !keep_alive_ || wants_close(r);
  std::string bytes = serialize_response(r, !close);
  reach([&](ExchangeSink& s) { s.post_response(seq_, std::move(bytes), close); });
}

void Exchange::begin_stream(int status, std::string content_type) {
  if (!advance(kFresh, kStreaming) || closed_) return;
  std::string head = serialize_stream_head(status, content_type, keep_alive_);
  reach([&](ExchangeSink& s) { s.post_stream_bytes(seq_, std::move(head), 0); });
}

bool Exchange::write(std::string chunk) {
  if (phase_.load() != kStreaming || closed_) return false;
  if (chunk.empty()) return true;
  const size_t n = chunk.size();
  const size_t messages = queued_messages_.fetch_add(1) + 1;
  const size_t bytes = queued_bytes_.fetch_add(n) + n;
  if (messages > limits_.messages || bytes > limits_.bytes) {
    queued_messages_ -= 1;
    queued_bytes_ -= n;
    if (!closed_.exchange(true)) reach([&](ExchangeSink& s) { s.post_overflow(seq_); });
    return false;
  }
  std::string framed = frame_chunk(chunk);
  return reach([&](ExchangeSink& s) { s.post_stream_bytes(seq_, std::move(framed), n); });
}

void Exchange::end() {
  if (!advance(kStreaming, kDone) || closed_) return;
  reach([&](ExchangeSink& s) { s.post_stream_end(seq_); });
}

void Exchange::on_close(std::function<void()> f) {
  std::unique_lock lock(m_);
  if (lost_) {
    lock.unlock();
    if (f) f();
    return;
  }
  if (phase_.load() != kDone) on_close_ = std::move(f);
}

void Exchange::connection_lost() {
  closed_ = true;
  std::function<void()> f;
  {
    std::lock_guard lock(m_);
    if (lost_ || phase_.load() == kDone) return;
    lost_ = true;
    f.swap(on_close_);
  }
  if (f) f();
}

void Exchange::chunk_written(size_t bytes) {
  queued_messages_ -= 1;
  queued_bytes_ -= bytes;
}

}  // namespace mnemo::daemon::net::detail
