#include "daemon/app/server_tools.h"

#include <chrono>
#include <cmath>

#include <spdlog/spdlog.h>

#include "daemon/app/continuum.h"
#include "daemon/app/records.h"

namespace mnemo::daemon::app {

ServerTools::ServerTools(plugins::ToolRegistry& registry, store::Store& store, AppMetrics& metrics,
                         Continuum* continuum)
    : registry_(registry), store_(store), metrics_(metrics), continuum_(continuum),
      calls_(metrics.registry.counter_family("mnemo_server_tool_calls_total",
                                             "tool calls run by mnemod, by tool and outcome (ok, error, timeout, ...)",
                                             {"tool", "outcome"})),
      seconds_(metrics.registry.histogram_family("mnemo_server_tool_seconds",
                                                 "duration of tool calls run by mnemod, by tool", {"tool"},
                                                 {0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300})) {}

nlohmann::ordered_json ServerTools::definitions(const std::set<std::string>& taken) const {
  auto out = nlohmann::ordered_json::array();
  for (const auto& e : registry_.tools()) {
    if (taken.count(e.name)) continue;
    nlohmann::ordered_json fn;
    fn["name"] = e.name;
    if (!e.spec.description.empty()) fn["description"] = e.spec.description;
    fn["parameters"] = e.spec.parameters;
    out.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return out;
}

protocol::Json ServerTools::listing() const {
  auto out = protocol::Json::array();
  for (const auto& e : registry_.tools())
    out.push_back({{"name", e.name},
                   {"description", e.spec.description},
                   {"parameters", e.spec.parameters},
                   {"provider", e.provider},
                   {"kind", e.kind}});
  return out;
}

bool ServerTools::has(const std::string& name) const { return registry_.find(name).has_value(); }

ToolRun ServerTools::run(const protocol::ToolCall& call, const std::string& program_id, const std::string& session_id,
                         std::stop_token cancel) {
  store::ToolCallRecord rec;
  rec.id = call.id;
  rec.program_id = program_id;
  rec.session_id = session_id;
  rec.name = call.name;
  rec.arguments = call.arguments;
  rec.started_at = now_ms();
  bool recorded = true;
  try {
    store_.start_tool_call(rec);
  } catch (const std::exception& e) {
    recorded = false;
    spdlog::warn("tool call {} ({}) not recorded: {}", call.id, call.name, e.what());
  }
  if (continuum_) continuum_->tool_started(call.id, call.name, "ws:" + program_id);
  ToolRun run;
  const auto t0 = std::chrono::steady_clock::now();
  // The model's arguments were not a JSON object (records.h wraps them as
  // {"_raw": text}): the tool never sees them.
  if (call.arguments.size() == 1 && call.arguments.contains("_raw"))
    run.result = plugins::failed(plugins::Failure::InvalidOutput,
                                 "the arguments of '" + call.name + "' were not a JSON object: " +
                                     call.arguments["_raw"].dump());
  else
    run.result = registry_.call(call.name, call.arguments, cancel);
  run.duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (continuum_) continuum_->tool_ended(call.id, true);
  if (recorded) {
    try {
      // The row spans the tool's own time, not the commit of the row before it.
      store_.end_tool_call(call.id, rec.started_at + std::llround(run.duration_ms),
                           run.result.is_error ? store::ToolStatus::Error : store::ToolStatus::Ok, run.result.output);
    } catch (const std::exception& e) {
      spdlog::warn("tool call {} ({}): end not recorded: {}", call.id, call.name, e.what());
    }
  }
  const char* outcome = run.result.failure != plugins::Failure::None ? plugins::to_string(run.result.failure)
                        : run.result.is_error                        ? "error"
                                                                     : "ok";
  calls_.labels({call.name, outcome}).inc();
  seconds_.labels({call.name}).observe(run.duration_ms / 1000);
  spdlog::info("tool {} ({}) for program {}: {} in {:.1f} ms, {} bytes of output", call.id, call.name, program_id,
               outcome, run.duration_ms, run.result.output.size());
  return run;
}

}  // namespace mnemo::daemon::app
