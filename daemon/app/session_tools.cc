// SessionApi's server-side tool rounds: response.create with server_tools.
#include <spdlog/spdlog.h>

#include "daemon/app/continuum.h"
#include "daemon/app/records.h"
#include "daemon/app/server_tools.h"
#include "daemon/app/session_api.h"
#include "daemon/app/session_sink.h"

namespace mnemo::daemon::app {

std::shared_ptr<SessionApi::ToolLoop> SessionApi::tool_loop(const protocol::Session& s, const protocol::ResponseCreate& e,
                                                            ResponseSpec& spec) {
  if (!tools_)
    throw BadRequest("server_tools: mnemod was started without --tools, so it has no tools of its own to run",
                     "server_tools");
  auto loop = std::make_shared<ToolLoop>();
  for (const auto& t : s.tools) loop->client_tools.insert(t.name);
  // "server_tools": [names] offers only those (every definition costs
  // prompt tokens, and a big MCP server has many).
  const std::set<std::string> wanted(e.server_tool_names.begin(), e.server_tool_names.end());
  for (const auto& name : wanted) {
    if (tools_->has(name)) continue;
    // Two providers offering one name are both namespaced: say so.
    std::string namespaced;
    for (const auto& t : tools_->listing())
      if (t["name"].get<std::string>().ends_with("__" + name))
        namespaced += (namespaced.empty() ? "" : " or ") + ("'" + t["name"].get<std::string>() + "'");
    throw BadRequest("server_tools: mnemod has no tool named '" + name + "'" +
                         (namespaced.empty() ? " (tools.list lists them)"
                                             : "; two providers offer it, so it is named " + namespaced),
                     "server_tools");
  }
  for (auto& def : tools_->definitions(loop->client_tools)) {
    const std::string name = def["function"]["name"];
    if (!wanted.empty() && !wanted.count(name)) continue;
    loop->server_tools.insert(name);
    spec.tools.push_back(std::move(def));
  }
  if (!e.tool_choice && !spec.tools.empty()) spec.tool_choice = ToolChoiceMode::Auto;
  loop->max_turns = e.max_tool_turns;
  if (e.program_id) {
    loop->program_id = *e.program_id;
    loop->client_program = true;
  } else {
    // The whole loop is one agent program: its pins and tool statistics
    // come from the rounds below.
    loop->program_id = make_id("prog_");
    spec.program.key = "ws:" + loop->program_id;
  }
  return loop;
}

void SessionApi::begin_loop_program(ToolLoop& loop, const std::string& session_id) {
  if (loop.client_program || loop.owns_program) return;
  store::ProgramRecord p;
  p.id = loop.program_id;
  p.session_id = session_id;
  p.started_at = now_ms();
  p.metadata = {{"mnemo", "server_tools"}};
  store_.begin_program(p);
  loop.owns_program = true;
  if (continuum_) continuum_->program_begun("ws:" + p.id);
}

void SessionApi::end_loop_program(ToolLoop& loop) {
  if (!loop.owns_program) return;
  loop.owns_program = false;
  try {
    store_.end_program(loop.program_id, now_ms());
  } catch (const std::exception& e) {
    spdlog::warn("program {}: end not recorded: {}", loop.program_id, e.what());
  }
  if (continuum_) continuum_->program_ended("ws:" + loop.program_id);
}

void SessionApi::run_tool_round(std::shared_ptr<Sink> sink, std::shared_ptr<ToolLoop> loop,
                                std::vector<protocol::ToolCall> calls, protocol::Message assistant) {
  const std::string& session_id = sink->session_id();
  const std::string& response_id = sink->response_id();
  bool client_calls = false;
  try {
    for (const auto& call : calls) {
      // Only a configured tool ever runs; any other name, and the session's
      // own tools, are the client's to answer.
      if (!loop->server_tools.count(call.name)) {
        client_calls = true;
        continue;
      }
      if (loop->stop.stop_requested()) break;
      send(sink->connection(), protocol::ServerToolStart{response_id, session_id, call.id, call.name, call.arguments,
                                                         loop->program_id});
      const ToolRun run = tools_->run(call, loop->program_id, session_id, loop->stop.get_token());
      protocol::ServerToolEnd end{response_id, session_id, call.id, call.name,
                                  run.result.is_error ? protocol::ToolStatus::Error : protocol::ToolStatus::Ok,
                                  run.duration_ms, int64_t(run.result.output.size()), run.result.output};
      if (run.result.failure != plugins::Failure::None) end.error = plugins::to_string(run.result.failure);
      send(sink->connection(), end);
      protocol::Message result;
      result.role = protocol::Role::Tool;
      result.content = run.result.output;
      result.tool_call_id = call.id;
      result.name = call.name;
      result.created_at = now_ms();
      store_.append_message(session_id, to_record(result));
    }
  } catch (const store::NotFound&) {
    sink->end(protocol::FinishReason::Cancelled, {}, protocol::ErrorBody{ErrorCode::NotFound, "the session was deleted"});
    return;
  } catch (const store::StorageFailure& e) {
    spdlog::error("response {} on {}: tool result not stored: {}", response_id, session_id, e.what());
    sink->end(protocol::FinishReason::Error, {},
              protocol::ErrorBody{error_code_for(e), storage_message(e, "a tool result was not saved")});
    return;
  }
  ++loop->turns;
  if (stopping_) return sink->end(protocol::FinishReason::Shutdown, {});
  if (loop->stop.stop_requested()) return sink->end(protocol::FinishReason::Cancelled, {});
  // Calls the daemon did not run: the response stops for the client, whose
  // results join the daemon's in the history.
  if (client_calls) return sink->end(protocol::FinishReason::ToolCalls, std::move(assistant));
  try {
    ResponseSpec spec = loop->spec;
    const protocol::Session s = load_session(session_id);
    ResponseSpec fresh = spec_for(s, {});
    spec.messages = std::move(fresh.messages);
    const engine::RequestId id = responder_.start(spec, sink);
    std::lock_guard lock(mu_);
    if (auto it = running_.find(response_id); it != running_.end()) it->second.request = id;
    // Cancelled while the turn was being submitted: cancel_running saw the old request.
    if (loop->stop.stop_requested()) responder_.cancel(id);
  } catch (const BadRequest& e) {
    sink->end(protocol::FinishReason::Error, {}, protocol::ErrorBody{ErrorCode::InvalidRequest, e.what()});
  } catch (const protocol::ProtocolError& e) {
    sink->end(protocol::FinishReason::Error, {}, protocol::ErrorBody{e.code(), e.what()});
  } catch (const std::exception& e) {
    spdlog::error("response {} on {}: next turn not started: {}", response_id, session_id, e.what());
    sink->end(protocol::FinishReason::Error, {}, protocol::ErrorBody{ErrorCode::Internal, e.what()});
  }
}

}  // namespace mnemo::daemon::app
