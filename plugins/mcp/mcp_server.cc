#include "plugins/mcp/mcp_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include <spdlog/spdlog.h>

#include "plugins/child_process.h"
#include "plugins/mcp/call_result.h"
#include "plugins/mcp/server_detail.h"

namespace mnemo::plugins::mcp {

using namespace detail;

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr const char* kProtocolVersion = "2025-06-18";
constexpr const char* kClientVersion = "0.1.0";
// What a server sees of mnemod's environment, before its own "env".
const std::vector<std::string> kEnvAllow = {"PATH", "HOME",   "USER",   "LOGNAME", "SHELL",
                                            "TERM", "LANG",   "LC_ALL", "TMPDIR",  "NODE_PATH"};

// Exited (a zombie not yet reaped) within `d`.
bool exits_within(pid_t pid, Clock::duration d) {
  const auto until = Clock::now() + d;
  for (;;) {
    siginfo_t info{};
    if (waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

}  // namespace

const char* to_string(McpServer::State s) {
  switch (s) {
    case McpServer::State::Stopped: return "stopped";
    case McpServer::State::Starting: return "starting";
    case McpServer::State::Ready: return "ready";
    case McpServer::State::Restarting: return "restarting";
  }
  return "?";
}

// A request waiting for its response. Settled once: by the reader (reply) or
// by the end of the process (failure).
McpServer::McpServer(McpServerConfig config, McpServerOptions options)
    : config_(std::move(config)), opts_(options) {}

McpServer::~McpServer() { stop(); }

// ---- lifecycle ---------------------------------------------------------

void McpServer::start() {
  // A command that is not there is a mistake in the tools file, not a
  // server to retry forever.
  if (config_.argv.empty() || !resolves_to_program(config_.argv[0], config_.cwd))
    throw std::runtime_error("command '" + (config_.argv.empty() ? std::string() : config_.argv[0]) +
                             "' is not an executable file (searched in mnemod's PATH)");
  {
    std::lock_guard lk(lifecycle_mu_);
    if (supervisor_.joinable()) return;
    {
      std::lock_guard g(mu_);
      state_ = State::Starting;
    }
    supervisor_ = std::jthread([this](std::stop_token st) { supervise(st); });
  }
  if (!wait_ready(opts_.start_wait)) {
    std::lock_guard g(mu_);
    logger()->warn("[{}] not ready after {} ms ({}); retrying in the background", config_.name,
                   ms(opts_.start_wait), last_error_.empty() ? to_string(state_) : last_error_);
  }
}

void McpServer::stop() {
  std::lock_guard lk(lifecycle_mu_);
  if (!supervisor_.joinable()) return;
  supervisor_.request_stop();
  {
    std::lock_guard g(mu_);
    live_ = false;
    fail_all_locked(Failure::Unavailable, "MCP server '" + config_.name + "' was stopped");
  }
  cv_.notify_all();
  supervisor_.join();
  supervisor_ = std::jthread();
  std::lock_guard g(mu_);
  state_ = State::Stopped;
  cv_.notify_all();
}

void McpServer::supervise(std::stop_token st) {
  auto backoff = opts_.backoff_initial;
  for (bool first = true; !st.stop_requested(); first = false) {
    if (!first) {
      std::lock_guard g(mu_);
      ++restarts_;
    }
    const auto began = Clock::now();
    run_session(st);
    if (st.stop_requested()) break;
    if (Clock::now() - began >= opts_.stable_after) backoff = opts_.backoff_initial;
    std::unique_lock lk(mu_);
    state_ = State::Restarting;
    logger()->warn("[{}] {}; restarting in {} ms", config_.name, last_error_, ms(backoff));
    cv_.wait_for(lk, st, backoff, [] { return false; });
    backoff = std::min(backoff * 2, opts_.backoff_max);
  }
  std::lock_guard g(mu_);
  state_ = State::Stopped;
  live_ = false;
  cv_.notify_all();
}

void McpServer::run_session(std::stop_token st) {
  std::optional<ChildProcess> child;
  try {
    child.emplace(ChildProcess::spawn({config_.argv, child_environment(kEnvAllow, config_.env), config_.cwd}));
  } catch (const std::exception& e) {
    std::lock_guard g(mu_);
    last_error_ = e.what();
    return;
  }
  // Non-blocking so that a server that stops reading cannot hold a writer
  // past its deadline.
  fcntl(child->stdin_fd(), F_SETFL, fcntl(child->stdin_fd(), F_GETFL) | O_NONBLOCK);
  uint64_t gen = 0;
  {
    std::lock_guard g(mu_);
    gen = ++gen_;
    live_ = true;
    ended_by_eof_ = false;
    refetch_ = false;
    end_reason_.clear();
    state_ = State::Starting;
  }
  {
    std::lock_guard g(write_mu_);
    stdin_fd_ = child->stdin_fd();
    stdin_gen_ = gen;
  }
  logger()->info("[{}] started '{}' (pid {})", config_.name, config_.argv.front(), child->pid());
  std::jthread out([this, gen, fd = child->stdout_fd()](std::stop_token s) { read_stdout(s, gen, fd); });
  std::jthread err([this, fd = child->stderr_fd()](std::stop_token s) { read_stderr(s, fd); });

  std::string why;
  try {
    why = handshake(st);
  } catch (const std::exception& e) {
    // An answer of a shape the checks did not foresee: that server's fault.
    why = std::string("unexpected answer during the handshake: ") + e.what();
  }
  if (!why.empty()) {
    end_session(gen, why, End::Failed);
  } else {
    std::unique_lock lk(mu_);
    if (live_) {
      state_ = State::Ready;
      logger()->info("[{}] ready: {} tools", config_.name, tools_.size());
      cv_.notify_all();
    }
    for (;;) {
      cv_.wait(lk, st, [&] { return !live_ || refetch_; });
      if (st.stop_requested() || !live_) break;
      refetch_ = false;
      lk.unlock();
      logger()->info("[{}] tool list changed; fetching it again", config_.name);
      std::string why;
      try {
        why = list_tools(st);
      } catch (const std::exception& e) {
        why = std::string("unexpected answer: ") + e.what();
      }
      if (!why.empty()) logger()->warn("[{}] keeping the previous tool list: {}", config_.name, why);
      lk.lock();
    }
  }

  const bool stopping = st.stop_requested();
  bool eof = false;
  std::string reason;
  {
    std::lock_guard g(mu_);
    live_ = false;
    eof = ended_by_eof_;
    reason = end_reason_.empty() ? "was stopped" : end_reason_;
    state_ = stopping ? State::Stopped : State::Restarting;
  }
  if (eof && !stopping) exits_within(child->pid(), kExitGrace);
  child->kill_group(SIGKILL);  // the server's own children go with it
  const std::string how = describe_status(child->wait());
  {
    std::lock_guard g(write_mu_);
    stdin_fd_ = -1;
  }
  out.request_stop();
  err.request_stop();
  out.join();
  err.join();
  std::lock_guard g(mu_);
  if (stopping) {
    fail_all_locked(Failure::Unavailable, "MCP server '" + config_.name + "' was stopped");
  } else {
    last_error_ = reason + " (" + how + ")";
    fail_all_locked(Failure::Crashed, "MCP server '" + config_.name + "' " + reason + " mid-call (" + how + ")");
  }
  cv_.notify_all();
}

std::string McpServer::handshake(std::stop_token st) {
  const Json params = {{"protocolVersion", kProtocolVersion},
                       {"capabilities", Json::object()},
                       {"clientInfo", {{"name", "mnemod"}, {"version", kClientVersion}}}};
  Reply r = request("initialize", params, Clock::now() + opts_.init_timeout, st, false);
  if (r.failure) return "initialize: " + r.failure->output;
  if (r.msg.kind == MessageKind::Error)
    return "initialize failed: error " + std::to_string(r.msg.error_code) + ": " + r.msg.error_message;
  const Json& res = r.msg.result;
  if (!res.is_object() || !res.contains("protocolVersion") || !res["protocolVersion"].is_string())
    return "initialize result has no 'protocolVersion'";
  const std::string version = res["protocolVersion"].get<std::string>();
  const Json info = res.value("serverInfo", Json::object());
  logger()->info("[{}] initialized: {} {} (protocol {})", config_.name,
                 info.is_object() ? text_field(info, "name", "?") : "?",
                 info.is_object() ? text_field(info, "version", "?") : "?", version);
  // Older revisions differ in ways tools/list and tools/call do not see.
  if (version != kProtocolVersion && version != "2025-03-26" && version != "2024-11-05")
    logger()->warn("[{}] speaks protocol {}, not {}; going on", config_.name, version, kProtocolVersion);
  if (send(r.gen, to_line(make_notification("notifications/initialized")), Clock::now() + opts_.init_timeout) !=
      Sent::Ok)
    return "could not send notifications/initialized";
  return list_tools(st);
}

std::string McpServer::list_tools(std::stop_token st) {
  std::vector<ToolSpec> found;
  std::set<std::string> seen;
  Json cursor;
  int page = 0;
  for (;; ++page) {
    if (page == opts_.max_list_pages) {
      logger()->warn("[{}] tools/list: stopped after {} pages", config_.name, page);
      break;
    }
    const Json params = cursor.is_null() ? Json() : Json{{"cursor", cursor}};
    Reply r = request("tools/list", params, Clock::now() + opts_.init_timeout, st, false);
    if (r.failure) return "tools/list: " + r.failure->output;
    if (r.msg.kind == MessageKind::Error)
      return "tools/list failed: error " + std::to_string(r.msg.error_code) + ": " + r.msg.error_message;
    const Json& res = r.msg.result;
    if (!res.is_object() || !res.contains("tools") || !res["tools"].is_array())
      return "tools/list result has no 'tools' array";
    for (const Json& t : res["tools"]) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
        logger()->warn("[{}] tools/list: skipping an entry without a name", config_.name);
        continue;
      }
      ToolSpec spec;
      spec.name = t["name"].get<std::string>();
      if (!seen.insert(spec.name).second) continue;
      spec.description = text_field(t, "description");
      if (t.contains("inputSchema") && t["inputSchema"].is_object()) spec.parameters = t["inputSchema"];
      found.push_back(std::move(spec));
    }
    const auto next = res.find("nextCursor");
    if (next == res.end() || next->is_null() || (next->is_string() && next->get_ref<const std::string&>().empty()))
      break;
    cursor = *next;
  }
  std::lock_guard g(mu_);
  tools_ = std::move(found);
  logger()->info("[{}] {} tools in {} page(s)", config_.name, tools_.size(), page + 1);
  return {};
}

// ---- requests ----------------------------------------------------------

McpServer::Reply McpServer::request(std::string_view method, const Json& params, Clock::time_point deadline,
                                    std::stop_token cancel, bool need_ready) {
  Reply r;
  auto p = std::make_shared<Pending>();
  {
    std::lock_guard g(mu_);
    if (!live_ || (need_ready && state_ != State::Ready)) {
      r.failure = failed(Failure::Unavailable, unavailable_locked());
      return r;
    }
    r.id = next_id_++;
    r.gen = gen_;
    pending_[r.id] = p;
  }
  const Sent sent = send(r.gen, to_line(make_request(r.id, method, params)), deadline);
  std::unique_lock lk(mu_);
  if (sent != Sent::Ok && !p->done) {
    pending_.erase(r.id);
    r.failure = sent == Sent::Late ? failed(Failure::Timeout, "could not write the request before the deadline")
                                   : failed(Failure::Unavailable, unavailable_locked());
    r.id = 0;  // never sent: nothing to cancel
    return r;
  }
  cv_.wait_until(lk, cancel, deadline, [&] { return p->done; });
  if (p->done) {
    if (p->failure) r.failure = p->failure;
    else r.msg = std::move(p->reply);
    return r;
  }
  pending_.erase(r.id);
  r.failure = cancel.stop_requested() ? failed(Failure::Cancelled, "cancelled")
                                      : failed(Failure::Timeout, "no answer before the deadline");
  return r;
}

McpServer::Sent McpServer::send(uint64_t gen, const std::string& line, Clock::time_point deadline) {
  std::lock_guard g(write_mu_);
  if (stdin_fd_ < 0 || stdin_gen_ != gen) return Sent::Gone;
  size_t off = 0;
  while (off < line.size()) {
    const long w = write_no_sigpipe(stdin_fd_, line.data() + off, line.size() - off);
    if (w > 0) {
      off += size_t(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) return Sent::Gone;  // EPIPE: it exited; the reader will see EOF
    const auto left = ms(deadline - Clock::now());
    if (left <= 0) break;
    pollfd pfd{stdin_fd_, POLLOUT, 0};
    poll(&pfd, 1, int(std::min<long long>(left, kPollMs)));
  }
  if (off == line.size()) return Sent::Ok;
  if (off == 0) return Sent::Late;
  // Half a message on the pipe: nothing after it could be framed.
  end_session(gen, "stopped reading its stdin", End::ProtocolError);
  return Sent::Gone;
}

ToolResult McpServer::call(const std::string& tool, const Json& arguments, const CallLimits& limits,
                           std::stop_token cancel) {
  {
    std::lock_guard g(mu_);
    if (state_ != State::Ready) return failed(Failure::Unavailable, unavailable_locked());
    if (std::none_of(tools_.begin(), tools_.end(), [&](const ToolSpec& t) { return t.name == tool; }))
      return failed(Failure::Unknown, "MCP server '" + config_.name + "' has no tool '" + tool + "'");
  }
  const auto began = Clock::now();
  const Json params = {{"name", tool}, {"arguments", arguments.is_null() ? Json::object() : arguments}};
  Reply r = request("tools/call", params, limits.deadline, cancel, true);
  const std::string who = "MCP server '" + config_.name + "': tool '" + tool + "'";
  if (r.failure) {
    const Failure f = r.failure->failure;
    if (f != Failure::Timeout && f != Failure::Cancelled) return *r.failure;
    if (r.id != 0) {
      const Json note = {{"requestId", r.id}, {"reason", f == Failure::Timeout ? "timeout" : "cancelled"}};
      send(r.gen, to_line(make_notification("notifications/cancelled", note)), Clock::now() + kSideWriteTimeout);
    }
    const auto given = ms(limits.deadline - began);
    return f == Failure::Timeout ? failed(f, who + " timed out after " + std::to_string(given) + " ms")
                                 : failed(f, who + " was cancelled after " + std::to_string(ms(Clock::now() - began)) +
                                                 " ms");
  }
  if (r.msg.kind == MessageKind::Error) {
    ToolResult e;
    e.output = who + ": error " + std::to_string(r.msg.error_code) + ": " + r.msg.error_message;
    e.is_error = true;
    return e;
  }
  return to_tool_result(config_.name, r.msg.result, limits.max_output_bytes);
}

// ---- the process's output ----------------------------------------------

void McpServer::end_session(uint64_t gen, std::string why, End how) {
  std::lock_guard g(mu_);
  if (gen != gen_ || !live_) return;
  live_ = false;
  ended_by_eof_ = how == End::Eof;
  if (how == End::ProtocolError) {
    logger()->error("[{}] protocol error: {}; restarting it", config_.name, why);
    fail_all_locked(Failure::InvalidOutput, "MCP server '" + config_.name + "' broke the protocol: " + why);
    why = "broke the protocol: " + why;
  }
  end_reason_ = std::move(why);
  cv_.notify_all();
}

void McpServer::fail_all_locked(Failure f, const std::string& message) {
  for (auto& [id, p] : pending_) {
    p->done = true;
    p->failure = failed(f, message);
  }
  pending_.clear();
  cv_.notify_all();
}

std::string McpServer::unavailable_locked() const {
  const std::string who = "MCP server '" + config_.name + "'";
  switch (state_) {
    case State::Stopped: return who + " is stopped";
    case State::Starting: return who + (restarts_ > 0 ? " is restarting" : " is starting");
    case State::Restarting: return who + " is restarting after: " + last_error_;
    case State::Ready: return who + " is restarting after: " + end_reason_;
  }
  return who + " is unavailable";
}

// ---- observation -------------------------------------------------------

std::vector<ToolSpec> McpServer::tools() const {
  std::lock_guard g(mu_);
  return tools_;
}

McpServer::State McpServer::state() const {
  std::lock_guard g(mu_);
  return state_;
}

int McpServer::restarts() const {
  std::lock_guard g(mu_);
  return restarts_;
}

std::string McpServer::last_error() const {
  std::lock_guard g(mu_);
  return last_error_;
}

bool McpServer::wait_ready(Clock::duration timeout) const {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return state_ == State::Ready || state_ == State::Stopped; });
  return state_ == State::Ready;
}

}  // namespace mnemo::plugins::mcp
