// McpServer's readers: the server's stdout (JSON-RPC lines: answers to our
// requests, its notifications and requests) and its stderr (to the log).
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "plugins/mcp/mcp_server.h"
#include "plugins/mcp/server_detail.h"

namespace mnemo::plugins::mcp {

using namespace detail;

void McpServer::read_stdout(std::stop_token st, uint64_t gen, int fd) {
  std::string buf;
  size_t scanned = 0;  // bytes of buf known to hold no newline
  std::vector<char> chunk(64 * 1024);
  while (!st.stop_requested()) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, kPollMs) <= 0) continue;
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      end_session(gen, "ended", End::Eof);
      return;
    }
    buf.append(chunk.data(), size_t(n));
    size_t start = 0;
    for (size_t nl; (nl = buf.find('\n', scanned)) != std::string::npos; scanned = start = nl + 1) {
      handle_line(gen, std::string_view(buf).substr(start, nl - start));
      std::lock_guard g(mu_);
      if (gen != gen_ || !live_) return;  // a protocol error ended it
    }
    buf.erase(0, start);
    scanned = buf.size();
    if (buf.size() > opts_.max_line_bytes) {
      end_session(gen, "sent a line over " + std::to_string(opts_.max_line_bytes) + " bytes", End::ProtocolError);
      return;
    }
  }
}

void McpServer::handle_line(uint64_t gen, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;
  Message m;
  try {
    m = parse_line(line);
  } catch (const ProtocolError& e) {
    end_session(gen, std::string(e.what()) + " in line: " + cut(line, 200), End::ProtocolError);
    return;
  }
  switch (m.kind) {
    case MessageKind::Result:
    case MessageKind::Error: {
      std::lock_guard g(mu_);
      const auto it = m.id.is_number_integer() ? pending_.find(m.id.get<int64_t>()) : pending_.end();
      if (it == pending_.end()) {
        logger()->debug("[{}] answer to no pending request (id {})", config_.name, id_text(m.id));
        return;
      }
      it->second->done = true;
      it->second->reply = std::move(m);
      pending_.erase(it);
      cv_.notify_all();
      return;
    }
    case MessageKind::Request: {
      // We offer no client capabilities; ping is the one request we must answer.
      const Json answer = m.method == "ping" ? make_result(m.id, Json::object())
                                             : make_error(m.id, kMethodNotFound, "Method not found: " + m.method);
      if (m.method != "ping") logger()->info("[{}] declined its request '{}'", config_.name, cut(m.method, 100));
      send(gen, to_line(answer), Clock::now() + kSideWriteTimeout);
      return;
    }
    case MessageKind::Notification:
      if (m.method == "notifications/tools/list_changed") {
        std::lock_guard g(mu_);
        refetch_ = true;
        cv_.notify_all();
      } else if (m.method == "notifications/message") {
        logger()->info("[{}] log: {}", config_.name, cut(m.params.dump(-1, ' ', false, Json::error_handler_t::replace),
                                                        opts_.max_stderr_line));
      } else {
        logger()->debug("[{}] notification {}", config_.name, cut(m.method, 100));
      }
      return;
  }
}

void McpServer::read_stderr(std::stop_token st, int fd) {
  std::string buf;
  bool skipping = false;  // inside a line already logged cut short
  char chunk[4096];
  auto emit = [&](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!skipping) logger()->info("[{}] stderr: {}", config_.name, cut(line, opts_.max_stderr_line));
  };
  while (!st.stop_requested()) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, kPollMs) <= 0) continue;
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    buf.append(chunk, size_t(n));
    size_t start = 0;
    for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      emit(std::string_view(buf).substr(start, nl - start));
      skipping = false;
    }
    buf.erase(0, start);
    if (buf.size() > opts_.max_stderr_line) {
      emit(buf);
      skipping = true;
      buf.clear();
    }
  }
  if (!buf.empty()) emit(buf);
}

// ---- the end of a process ----------------------------------------------

}  // namespace mnemo::plugins::mcp
