#include "daemon/app/session_api.h"

#include <algorithm>
#include <limits>

#include <spdlog/spdlog.h>

#include "daemon/app/continuum.h"
#include "daemon/app/event_gate.h"
#include "daemon/app/records.h"
#include "daemon/app/scope_exit.h"
#include "daemon/app/server_tools.h"
#include "daemon/app/session_memory.h"
#include "daemon/app/session_sink.h"
#include "daemon/app/storage_errors.h"

namespace mnemo::daemon::app {

using protocol::ErrorCode;
using protocol::ProtocolError;

namespace {

ProtocolError not_found(const std::string& what, const std::string& field) {
  return ProtocolError(ErrorCode::NotFound, what, field);
}

}  // namespace

SessionApi::SessionApi(SessionApiOptions opt, store::Store& store, Responder& responder, WorkerPool& pool,
                       AppMetrics& metrics, Continuum* continuum, ServerTools* tools)
    : opt_(opt), store_(store), responder_(responder), pool_(pool), metrics_(metrics), continuum_(continuum),
      tools_(tools && !tools->empty() ? tools : nullptr) {
  // Each running tool round holds a thread for as long as its tools run;
  // rounds beyond these wait their turn.
  if (tools_) tool_pool_ = std::make_unique<WorkerPool>(16);
  // Counted by the store: the Responses API creates sessions too.
  metrics_.registry.gauge("mnemo_sessions", "sessions stored").set_callback([this] {
    try {
      return double(store_.count_sessions());
    } catch (const std::exception&) {
      return -1.0;  // the store is failing; its errors are logged where they happen
    }
  });
  metrics_.registry.gauge("mnemo_sessions_responding", "sessions with a response running").set_callback([this] {
    std::lock_guard lock(mu_);
    return double(busy_.size());
  });
}

SessionApi::~SessionApi() { wait_tools_idle(); }

void SessionApi::wait_tools_idle() {
  if (tool_pool_) tool_pool_->wait_idle();
}

void SessionApi::cancel_running(const Running& r) {
  if (r.loop) r.loop->stop.request_stop();
  responder_.cancel(r.request);
}

void SessionApi::on_open(std::shared_ptr<net::WsConnection> ws) {
  auto c = std::make_shared<Connection>();
  c->ws = ws;
  c->queue = std::make_shared<SerialQueue>(pool_);
  std::lock_guard lock(mu_);
  connections_[ws->id()] = c;
  metrics_.ws_connections.inc();
}

void SessionApi::on_close(const std::shared_ptr<net::WsConnection>& ws) {
  std::vector<Running> cancel;
  {
    std::lock_guard lock(mu_);
    if (connections_.erase(ws->id()) == 0) return;
    metrics_.ws_connections.dec();
    // A client that vanished mid-response: stop generating (and running
    // tools) for nobody.
    for (const auto& [_, r] : running_)
      if (r.connection == ws->id()) cancel.push_back(r);
  }
  for (const auto& r : cancel) cancel_running(r);
}

void SessionApi::on_message(const std::shared_ptr<net::WsConnection>& ws, std::string text) {
  std::shared_ptr<Connection> c;
  {
    std::lock_guard lock(mu_);
    auto it = connections_.find(ws->id());
    if (it == connections_.end()) return;
    c = it->second;
  }
  metrics_.requests.labels({"ws_event"}).inc();
  // A ping on a connection with nothing in flight is answered here, on the
  // network thread: the control path never waits behind store writes of
  // other connections for a worker.
  if (text.size() < 256 && text.find("\"ping\"") != std::string::npos && c->queue->idle()) {
    try {
      const protocol::ClientEvent e = protocol::parse_client_event(text);
      if (auto* ping = std::get_if<protocol::Ping>(&e)) {
        send(*c, protocol::Pong{ping->event_id});
        return;
      }
    } catch (const ProtocolError&) {
      // Not a valid ping: the queued path reports it.
    }
  }
  c->queue->post([this, c, text = std::move(text)] {
    std::optional<std::string> event_id;
    try {
      protocol::ParseOptions po;
      po.max_frame_bytes = opt_.max_frame_bytes;
      const protocol::ClientEvent e = protocol::parse_client_event(text, po);
      event_id = protocol::event_id_of(e);
      if (stopping_) throw ProtocolError(ErrorCode::ShuttingDown, "the daemon is stopping");
      handle(*c, e);
    } catch (ProtocolError& e) {
      if (!e.event_id()) e.set_event_id(event_id);
      metrics_.errors.inc();
      send(*c, protocol::error_event(e));
    } catch (const BadRequest& e) {
      metrics_.errors.inc();
      send(*c, protocol::ErrorEvent{event_id, ErrorCode::InvalidRequest, e.what(), e.field()});
    } catch (const store::NotFound& e) {
      send(*c, protocol::ErrorEvent{event_id, ErrorCode::NotFound, e.what(), ""});
    } catch (const store::Conflict& e) {
      send(*c, protocol::ErrorEvent{event_id, ErrorCode::Conflict, e.what(), ""});
    } catch (const store::InvalidRecord& e) {
      send(*c, protocol::ErrorEvent{event_id, ErrorCode::InvalidRequest, e.what(), ""});
    } catch (const store::StorageFailure& e) {
      // Reads of other sessions keep working; writes resume once the cause
      // (a full disk) goes away. The SQLite detail is for the operator.
      spdlog::error("ws event failed: store {}: {}", store::to_string(e.fault()), e.what());
      metrics_.errors.inc();
      send(*c, protocol::ErrorEvent{event_id, error_code_for(e), storage_message(e, "nothing was saved"), ""});
    } catch (const std::exception& e) {
      spdlog::error("ws event failed: {}", e.what());
      metrics_.errors.inc();
      send(*c, protocol::ErrorEvent{event_id, ErrorCode::Internal, "internal error", ""});
    }
  });
}

void SessionApi::send(Connection& c, const protocol::ServerEvent& e) { c.ws->send(protocol::to_json(e)); }

protocol::Session SessionApi::load_session(const std::string& id) {
  const auto rec = store_.get_session(id);
  if (!rec) throw not_found("no session '" + id + "'", "session_id");
  return to_protocol(*rec, store_.message_count(id));
}

ResponseSpec SessionApi::spec_for(const protocol::Session& s, const protocol::Sampling& overrides) {
  ResponseSpec spec;
  if (!s.system.empty()) {
    engine::ChatMessage sys;
    sys.role = "system";
    sys.content = s.system;
    spec.messages.push_back(sys);
  }
  for (const auto& m : store_.history(s.id)) spec.messages.push_back(to_chat(to_protocol(m)));
  spec.tools = tools_json(s.tools);
  spec.tool_choice = s.tools.empty() ? ToolChoiceMode::None : ToolChoiceMode::Auto;
  spec.sampling = protocol::merge(s.sampling, overrides);
  return spec;
}

void SessionApi::handle(Connection& c, const protocol::ClientEvent& event) {
  if (auto* e = std::get_if<protocol::SessionCreate>(&event)) {
    if (store_.count_sessions() >= opt_.max_sessions)
      throw ProtocolError(ErrorCode::Overloaded, "the daemon holds its maximum of " +
                                                     std::to_string(opt_.max_sessions) + " sessions");
    protocol::Session s;
    s.id = make_id("sess_");
    s.created_at = s.updated_at = now_ms();
    s.system = e->system;
    s.sampling = e->sampling;
    s.tools = e->tools;
    s.metadata = e->metadata;
    if (!e->memory.is_null()) {
      const MemoryConfig mc = parse_memory_config(e->memory);
      if (!memory_ && mc.policy != "full")
        throw BadRequest("memory.policy: this daemon serves no compressed session memory", "memory.policy");
      s.memory = to_json(mc);
    }
    store_.create_session(to_record(s));
    spdlog::info("session {} created ({} tools)", s.id, s.tools.size());
    send(c, protocol::SessionCreated{e->event_id, s});
  } else if (auto* e = std::get_if<protocol::SessionResume>(&event)) {
    const protocol::Session s = load_session(e->session_id);
    // Rebuild the KV cache now (a prefill into the prefix cache) so the next
    // response starts from cached blocks.
    if (s.message_count > 0) {
      try {
        ResponseSpec spec = spec_for(s, {});
        spec.tool_choice = s.tools.empty() ? ToolChoiceMode::None : ToolChoiceMode::Auto;
        responder_.warm(spec);
      } catch (const std::exception& ex) {
        spdlog::warn("session {}: KV rebuild skipped: {}", s.id, ex.what());
      }
    }
    send(c, protocol::SessionResumed{e->event_id, s});
  } else if (auto* e = std::get_if<protocol::SessionList>(&event)) {
    const auto recs = store_.list_sessions(size_t(e->limit) + 1,
                                           e->after ? std::optional<std::string_view>(*e->after) : std::nullopt);
    protocol::SessionListed out{e->event_id, {}, recs.size() > size_t(e->limit)};
    for (size_t i = 0; i < recs.size() && i < size_t(e->limit); ++i)
      out.sessions.push_back(to_protocol(recs[i], store_.message_count(recs[i].id)));
    send(c, out);
  } else if (auto* e = std::get_if<protocol::SessionGet>(&event)) {
    protocol::SessionHistory out{e->event_id, load_session(e->session_id), {}, false};
    // A whole long history in one message would pass the connection's
    // outbound bound and get it closed (1013) on every try: a page holds at
    // most a quarter of the binding bound, and at least one message (a
    // message came in as one frame, so it fits).
    const size_t budget = std::min(opt_.max_frame_bytes, opt_.max_outbound_bytes) / 4;
    size_t bytes = protocol::to_json(out).size();
    // Protocol indices count from 0, store seqs from 1.
    const int64_t before_seq = e->before ? *e->before + 1 : std::numeric_limits<int64_t>::max();
    store_.history_before(e->session_id, before_seq, size_t(e->limit), [&](store::MessageRecord&& r) {
      protocol::Message m = to_protocol(r);
      const auto replace = protocol::Json::error_handler_t::replace;  // as to_json() writes it
      const size_t size = protocol::to_json_value(m).dump(-1, ' ', false, replace).size() + 1;  // and a comma
      if (!out.messages.empty() && bytes + size > budget) return false;
      bytes += size;
      out.messages.push_back(std::move(m));
      return true;
    });
    std::reverse(out.messages.begin(), out.messages.end());
    // Indices are contiguous from 0 (messages are never removed one by one).
    out.has_more = !out.messages.empty() && out.messages.front().index.value_or(0) > 0;
    send(c, out);
  } else if (auto* e = std::get_if<protocol::SessionDelete>(&event)) {
    load_session(e->session_id);
    std::optional<Running> cancel;
    {
      std::lock_guard lock(mu_);
      if (auto it = busy_.find(e->session_id); it != busy_.end()) cancel = running_.at(it->second);
    }
    if (cancel) {
      // The response ends (response.done "cancelled") before the session goes.
      cancel_running(*cancel);
      std::unique_lock lock(mu_);
      finished_.wait_for(lock, std::chrono::seconds(5), [&] { return busy_.count(e->session_id) == 0; });
    }
    store_.delete_session(e->session_id);
    if (memory_) memory_->forget(e->session_id);
    spdlog::info("session {} deleted", e->session_id);
    send(c, protocol::SessionDeleted{e->event_id, e->session_id});
  } else if (auto* e = std::get_if<protocol::MessageAppend>(&event)) {
    {
      std::lock_guard lock(mu_);
      if (busy_.count(e->session_id))
        throw ProtocolError(ErrorCode::Busy, "session '" + e->session_id + "' has a response running");
    }
    protocol::MessageAppended out{e->event_id, e->session_id, {}, 0};
    try {
      // The store's sequence numbers run 1, 2, 3...; protocol indices from 0.
      for (const auto& m : e->messages) out.indices.push_back(store_.append_message(e->session_id, to_record(m)) - 1);
    } catch (const store::NotFound&) {
      throw not_found("no session '" + e->session_id + "'", "session_id");
    } catch (const store::StorageFailure& f) {
      if (out.indices.empty()) throw;
      // Each message is its own write: say which ones were kept.
      spdlog::error("message.append on {}: store {}: {}", e->session_id, store::to_string(f.fault()), f.what());
      throw ProtocolError(error_code_for(f),
                          storage_message(f, "messages[" + std::to_string(out.indices.size()) +
                                                 "] and after were not saved; the ones before were, at indices " +
                                                 std::to_string(out.indices.front()) + " to " +
                                                 std::to_string(out.indices.back())));
    }
    // Messages are never removed one by one: the count follows the last index.
    out.message_count = out.indices.back() + 1;
    send(c, out);
  } else if (auto* e = std::get_if<protocol::ResponseCreate>(&event)) {
    create_response(c, *e);
  } else if (auto* e = std::get_if<protocol::ResponseCancel>(&event)) {
    std::optional<Running> r;
    {
      std::lock_guard lock(mu_);
      if (auto it = running_.find(e->response_id); it != running_.end()) r = it->second;
    }
    if (!r) throw not_found("no running response '" + e->response_id + "'", "response_id");
    cancel_running(*r);
  } else if (auto* e = std::get_if<protocol::ProgramBegin>(&event)) {
    if (e->session_id && !store_.get_session(*e->session_id))
      throw not_found("no session '" + *e->session_id + "'", "session_id");
    store::ProgramRecord p;
    p.id = e->program_id.value_or(make_id("prog_"));
    p.session_id = e->session_id;
    p.started_at = now_ms();
    p.metadata = e->metadata;
    store_.begin_program(p);
    if (continuum_) continuum_->program_begun("ws:" + p.id);
    send(c, protocol::ProgramBegun{e->event_id, p.id, p.session_id, p.started_at});
  } else if (auto* e = std::get_if<protocol::ProgramEnd>(&event)) {
    const auto p = store_.get_program(e->program_id);
    if (!p || p->ended_at) throw not_found("no running program '" + e->program_id + "'", "program_id");
    const int64_t end = now_ms();
    store_.end_program(e->program_id, end);
    if (continuum_) continuum_->program_ended("ws:" + e->program_id);
    send(c, protocol::ProgramEnded{e->event_id, e->program_id, double(end - p->started_at)});
  } else if (auto* e = std::get_if<protocol::ToolStart>(&event)) {
    if (e->program_id) {
      const auto p = store_.get_program(*e->program_id);
      if (!p || p->ended_at) throw not_found("no running program '" + *e->program_id + "'", "program_id");
    }
    if (e->session_id && !store_.get_session(*e->session_id))
      throw not_found("no session '" + *e->session_id + "'", "session_id");
    store::ToolCallRecord t;
    t.id = e->call_id;
    t.program_id = e->program_id;
    t.session_id = e->session_id;
    t.name = e->name;
    t.arguments = e->arguments ? *e->arguments : protocol::Json();
    t.started_at = now_ms();
    store_.start_tool_call(t);
    if (continuum_) continuum_->tool_started(t.id, t.name, t.program_id ? "ws:" + *t.program_id : std::string());
    send(c, protocol::ToolStarted{e->event_id, t.id, t.started_at});
  } else if (auto* e = std::get_if<protocol::ToolEnd>(&event)) {
    const auto t = store_.get_tool_call(e->call_id);
    if (!t || t->ended_at) throw not_found("no running tool call '" + e->call_id + "'", "call_id");
    const int64_t end = now_ms();
    store_.end_tool_call(e->call_id, end, e->status == protocol::ToolStatus::Ok ? store::ToolStatus::Ok : store::ToolStatus::Error,
                         e->result.value_or(""));
    if (continuum_) continuum_->tool_ended(e->call_id);
    send(c, protocol::ToolEnded{e->event_id, e->call_id, e->status, double(end - t->started_at)});
  } else if (auto* e = std::get_if<protocol::ToolsList>(&event)) {
    send(c, protocol::ToolsListed{e->event_id, tools_ ? tools_->listing() : protocol::Json::array()});
  } else if (auto* e = std::get_if<protocol::Ping>(&event)) {
    send(c, protocol::Pong{e->event_id});
  }
}

void SessionApi::create_response(Connection& c, const protocol::ResponseCreate& e) {
  const protocol::Session s = load_session(e.session_id);
  if (e.program_id) {
    const auto p = store_.get_program(*e.program_id);
    if (!p || p->ended_at) throw not_found("no running program '" + *e.program_id + "'", "program_id");
  }
  ResponseSpec spec = spec_for(s, e.sampling);
  if (e.program_id) spec.program.key = "ws:" + *e.program_id;
  // The daemon's tools join the session's before tool_choice is checked.
  std::shared_ptr<ToolLoop> loop = e.server_tools ? tool_loop(s, e, spec) : nullptr;
  if (e.tool_choice) {
    using M = protocol::ToolChoice::Mode;
    switch (e.tool_choice->mode) {
      case M::None: spec.tool_choice = ToolChoiceMode::None; break;
      case M::Auto: spec.tool_choice = ToolChoiceMode::Auto; break;
      case M::Required: spec.tool_choice = ToolChoiceMode::Required; break;
      case M::Function:
        spec.tool_choice = ToolChoiceMode::Function;
        spec.function = e.tool_choice->function;
        break;
    }
    if ((spec.tool_choice == ToolChoiceMode::Required || spec.tool_choice == ToolChoiceMode::Function) &&
        spec.tools.empty())
      throw BadRequest("tool_choice asks for a tool call but the session has no tools", "tool_choice");
    if (spec.tool_choice == ToolChoiceMode::Function &&
        std::none_of(spec.tools.begin(), spec.tools.end(),
                     [&](const auto& t) { return t["function"]["name"] == spec.function; }))
      throw BadRequest("the session has no tool named '" + spec.function + "'" +
                           (e.server_tools ? " and mnemod's --tools file none either" : ""),
                       "tool_choice");
  }
  if (loop) loop->spec = spec;  // every turn of the response is asked the same way
  const std::string response_id = make_id("resp_");
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard lock(mu_);
    if (busy_.count(s.id)) throw ProtocolError(ErrorCode::Busy, "session '" + s.id + "' has a response running");
    auto it = connections_.find(c.ws->id());
    if (it == connections_.end()) return;  // the client is gone
    conn = it->second;
    busy_[s.id] = response_id;
    running_[response_id] = Running{s.id, 0, c.ws->id(), loop};
  }
  // Until the responder owns the response (and with it the duty to end it),
  // any failure frees the session.
  ScopeExit unclaim([&] {
    if (loop) end_loop_program(*loop);
    finish_response(response_id);
  });
  if (loop) begin_loop_program(*loop, s.id);
  auto sink = std::make_shared<Sink>(*this, conn, response_id, s.id, e.event_id, loop);
  // A compressed history: built here, on this worker, while the session is busy.
  std::shared_ptr<const std::vector<uint8_t>> start_kv;
  int64_t kv_saved = 0;  // prompt tokens the snapshot holds without a slot each
  if (memory_ && !s.memory.is_null()) {
    const MemoryConfig mc = parse_memory_config(s.memory);
    try {
      if (auto m = memory_->prepare(s.id, mc, responder_.prompt(spec), spec.cache_salt, spec.messages)) {
        start_kv = std::move(m->kv);
        kv_saved = m->usage.value("compressed_tokens", int64_t(0)) - m->usage.value("history_tokens", int64_t(0));
        sink->set_memory_usage(std::move(m->usage));
      }
    } catch (const BadRequest&) {
      throw;
    } catch (const std::exception& ex) {
      spdlog::warn("session {}: compressed history not built, the full history is used: {}", s.id, ex.what());
    }
  }
  const engine::RequestId id = responder_.start(spec, sink, std::move(start_kv), kv_saved);
  unclaim.dismiss();
  {
    std::lock_guard lock(mu_);
    if (auto it = running_.find(response_id); it != running_.end()) it->second.request = id;
  }
  sink->open([&] {
    // Must not throw: the gate would stay shut and response.done never go out.
    try {
      send(c, protocol::ResponseCreated{e.event_id, response_id, s.id});
    } catch (const std::exception& ex) {
      spdlog::warn("response {}: response.created not sent: {}", response_id, ex.what());
    }
  });
}

void SessionApi::finish_response(const std::string& response_id) {
  std::lock_guard lock(mu_);
  auto it = running_.find(response_id);
  if (it == running_.end()) return;
  busy_.erase(it->second.session_id);
  running_.erase(it);
  finished_.notify_all();
}

}  // namespace mnemo::daemon::app
