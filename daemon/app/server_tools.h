#pragma once
// The daemon's side of server-run tools: what the model is told about the
// configured tools, and one call run as part of an agent program (stored,
// timed exactly for Continuum, counted in metrics). The tools themselves
// live in plugins/; this file never touches the engine.
#include <set>
#include <stop_token>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/app/app_metrics.h"
#include "daemon/protocol/types.h"
#include "daemon/store/store.h"
#include "plugins/tool_registry.h"

namespace mnemo::daemon::app {

class Continuum;

struct ToolRun {
  plugins::ToolResult result;
  double duration_ms = 0;  // the tool's own time, from the provider call to its answer
};

class ServerTools {
 public:
  ServerTools(plugins::ToolRegistry& registry, store::Store& store, AppMetrics& metrics, Continuum* continuum);

  // OpenAI tool definitions of the configured tools, leaving out names in
  // `taken` (the session's own tools win: their calls go to the client).
  nlohmann::ordered_json definitions(const std::set<std::string>& taken) const;
  // [{name, description, parameters, provider, kind}] for tools.list and GET /v1/tools.
  protocol::Json listing() const;
  bool has(const std::string& name) const;
  bool empty() const { return registry_.empty(); }

  // Runs one call the model made inside a program. Never throws: a store
  // that cannot record it only costs the record (logged).
  ToolRun run(const protocol::ToolCall& call, const std::string& program_id, const std::string& session_id,
              std::stop_token cancel);

 private:
  plugins::ToolRegistry& registry_;
  store::Store& store_;
  AppMetrics& metrics_;
  Continuum* continuum_;
  metrics::Family<metrics::Counter>& calls_;
  metrics::Family<metrics::Histogram>& seconds_;
};

}  // namespace mnemo::daemon::app
