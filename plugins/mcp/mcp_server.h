#pragma once
// One MCP server on stdio (newline-delimited JSON-RPC) as a tool provider.
//
//            start()                    initialize, initialized, tools/list
//   Stopped --------> Starting ----------------------------------------> Ready
//      ^                 ^  |                                              |
//      |    backoff      |  | fails / times out      exits, protocol error |
//      |                 |  v                                              |
//      +---- stop() -- Restarting <----------------------------------------+
//
// A supervisor thread owns the lifecycle: it spawns the process, does the
// handshake, refetches the tool list on notifications/tools/list_changed,
// and restarts the server with exponential backoff when it exits or breaks
// the protocol. A reader thread routes stdout lines to the pending calls;
// another logs stderr. call() may run on many threads at once.
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "plugins/mcp/jsonrpc.h"
#include "plugins/tool.h"
#include "plugins/tools_config.h"

namespace mnemo::plugins::mcp {

struct McpServerOptions {
  std::chrono::milliseconds init_timeout{60000};  // initialize, and each tools/list page (npx may be slow)
  std::chrono::milliseconds start_wait{60000};    // how long start() waits for Ready
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds stable_after{60000};  // up this long: the next restart waits backoff_initial again
  size_t max_line_bytes = 8 << 20;                // a longer stdout line is a protocol error
  size_t max_stderr_line = 2000;                  // stderr lines are logged cut to this
  int max_list_pages = 100;                       // tools/list pages followed
};

class McpServer : public Provider {
 public:
  enum class State { Stopped, Starting, Ready, Restarting };

  explicit McpServer(McpServerConfig config, McpServerOptions options = {});
  ~McpServer() override;  // stop()
  McpServer(const McpServer&) = delete;
  McpServer& operator=(const McpServer&) = delete;

  const std::string& name() const override { return config_.name; }
  const char* kind() const override { return "mcp"; }
  // Launches the supervisor and waits up to options.start_wait for Ready.
  // Never throws for the server's sake: a slow or failing server is logged
  // and retried in the background.
  void start() override;
  // The list from the last successful tools/list (empty until the first).
  std::vector<ToolSpec> tools() const override;
  ToolResult call(const std::string& tool, const Json& arguments, const CallLimits& limits,
                  std::stop_token cancel) override;
  // Kills the process group, joins every thread; pending calls end Unavailable.
  void stop() override;

  State state() const;
  bool ready() const { return state() == State::Ready; }
  // Processes spawned after the first.
  int restarts() const;
  // Why the last process ended or failed to start ("" if none did).
  std::string last_error() const;
  // True once Ready; false after `timeout` or when stopped.
  bool wait_ready(Clock::duration timeout) const;

 private:
  struct Pending;
  struct Reply;
  enum class Sent { Ok, Gone, Late };
  enum class End { Eof, ProtocolError, Failed };

  void supervise(std::stop_token st);
  void run_session(std::stop_token st);
  std::string handshake(std::stop_token st);
  std::string list_tools(std::stop_token st);
  Reply request(std::string_view method, const Json& params, Clock::time_point deadline, std::stop_token cancel,
                bool need_ready);
  Sent send(uint64_t gen, const std::string& line, Clock::time_point deadline);
  void read_stdout(std::stop_token st, uint64_t gen, int fd);
  void read_stderr(std::stop_token st, int fd);
  void handle_line(uint64_t gen, std::string_view line);
  void end_session(uint64_t gen, std::string why, End how);
  void fail_all_locked(Failure f, const std::string& message);
  std::string unavailable_locked() const;

  const McpServerConfig config_;
  const McpServerOptions opts_;

  mutable std::mutex mu_;  // everything below up to write_mu_
  mutable std::condition_variable_any cv_;
  State state_ = State::Stopped;
  std::vector<ToolSpec> tools_;
  std::map<int64_t, std::shared_ptr<Pending>> pending_;
  int64_t next_id_ = 1;
  uint64_t gen_ = 0;          // one number per spawned process
  bool live_ = false;         // the current process takes requests
  bool ended_by_eof_ = false; // it closed stdout (rather than being found broken)
  bool refetch_ = false;      // notifications/tools/list_changed arrived
  std::string end_reason_;
  std::string last_error_;
  int restarts_ = 0;

  std::mutex write_mu_;  // one writer at a time on stdin; the fd and its process number
  int stdin_fd_ = -1;
  uint64_t stdin_gen_ = 0;

  std::mutex lifecycle_mu_;  // start() against stop()
  std::jthread supervisor_;
};

const char* to_string(McpServer::State s);

}  // namespace mnemo::plugins::mcp
