#pragma once
// The WebSocket session protocol of docs/protocol.md: each connection's
// events run in arrival order on the worker pool (SQLite commits block), and
// responses stream back from the Responder.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "daemon/app/app_metrics.h"
#include "daemon/app/responder.h"
#include "daemon/app/worker_pool.h"
#include "daemon/net/handlers.h"
#include "daemon/net/server_options.h"
#include "daemon/protocol/client_events.h"
#include "daemon/protocol/server_events.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::app {

struct SessionApiOptions {
  size_t max_frame_bytes = 1 << 20;
  int64_t max_sessions = 4096;
  // The net layer's per-connection bound: no one reply may come near it.
  size_t max_outbound_bytes = net::ServerOptions{}.max_outbound_bytes;
};

class Continuum;
class ServerTools;
class SessionMemory;

class SessionApi : public net::WsHandler {
 public:
  // continuum (optional) hears program and tool events (exact tool timings);
  // tools (optional) are the --tools file's, run for response.create with
  // server_tools.
  SessionApi(SessionApiOptions opt, store::Store& store, Responder& responder, WorkerPool& pool, AppMetrics& metrics,
             Continuum* continuum = nullptr, ServerTools* tools = nullptr);
  ~SessionApi() override;

  void on_open(std::shared_ptr<net::WsConnection> connection) override;
  void on_message(const std::shared_ptr<net::WsConnection>& connection, std::string text) override;
  void on_close(const std::shared_ptr<net::WsConnection>& connection) override;
  // New events are refused with shutting_down from now on.
  void stop_accepting() { stopping_ = true; }
  // Waits for tool rounds in flight to end (stop the tools first, so they do quickly).
  void wait_tools_idle();
  // Serves sessions created with a "memory" setting from compressed
  // histories; without it (nullptr) such sessions are refused.
  void set_memory(SessionMemory* memory) { memory_ = memory; }

 private:
  struct Connection;
  // A response.create with server_tools: the rounds of tool calls it runs.
  struct ToolLoop {
    ResponseSpec spec;                     // tools, tool_choice, sampling, program: the same every turn
    std::set<std::string> client_tools;    // the session's own tools: their calls go to the client
    std::set<std::string> server_tools;    // the daemon's tools offered to the model: only these run
    int64_t max_turns = 0, turns = 0;
    std::string program_id;
    bool client_program = false;  // the client's program.begin: the client ends it
    bool owns_program = false;    // begun for this response: ended with it
    protocol::Usage usage;      // of the turns before the current one
    std::stop_source stop;      // response.cancel, the client gone, shutdown
  };
  struct Running {
    std::string session_id;
    engine::RequestId request = 0;
    uint64_t connection = 0;
    std::shared_ptr<ToolLoop> loop;
  };
  class Sink;

  void handle(Connection& c, const protocol::ClientEvent& event);
  void send(Connection& c, const protocol::ServerEvent& e);
  protocol::Session load_session(const std::string& id);
  void create_response(Connection& c, const protocol::ResponseCreate& e);
  void finish_response(const std::string& response_id);
  void cancel_running(const Running& r);
  // server_tools: the tools the model sees, the program the rounds belong to.
  std::shared_ptr<ToolLoop> tool_loop(const protocol::Session& s, const protocol::ResponseCreate& e, ResponseSpec& spec);
  void begin_loop_program(ToolLoop& loop, const std::string& session_id);
  void end_loop_program(ToolLoop& loop);
  // Runs the server-side calls of a turn that ended in tool calls, then the
  // next turn, or ends the response (session_tools.cc).
  void run_tool_round(std::shared_ptr<Sink> sink, std::shared_ptr<ToolLoop> loop, std::vector<protocol::ToolCall> calls,
                      protocol::Message assistant);
  ResponseSpec spec_for(const protocol::Session& s, const protocol::Sampling& overrides);

  SessionApiOptions opt_;
  store::Store& store_;
  Responder& responder_;
  WorkerPool& pool_;
  AppMetrics& metrics_;
  Continuum* continuum_;
  ServerTools* tools_;
  SessionMemory* memory_ = nullptr;
  std::unique_ptr<WorkerPool> tool_pool_;  // tool rounds block for as long as their tools run
  std::atomic<bool> stopping_{false};

  std::mutex mu_;
  std::condition_variable finished_;  // a response left running_
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
  std::unordered_map<std::string, Running> running_;        // by response id
  std::unordered_map<std::string, std::string> busy_;       // session id -> response id
};

}  // namespace mnemo::daemon::app
