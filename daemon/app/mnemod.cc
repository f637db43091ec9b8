// mnemod: the Mnemo daemon. Loads a model (the built-in one by default),
// opens the session store, and serves the WebSocket session protocol and the
// OpenAI-compatible HTTP API until SIGINT or SIGTERM.
#include <malloc.h>
#include <omp.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "daemon/app/app_metrics.h"
#include "daemon/app/continuum.h"
#include "daemon/app/http_api.h"
#include "daemon/app/responder.h"
#include "daemon/app/completions_api.h"
#include "daemon/app/embeddings_api.h"
#include "daemon/app/responses_api.h"
#include "daemon/app/responses_ws.h"
#include "daemon/app/server_tools.h"
#include "daemon/app/session_api.h"
#include "daemon/app/worker_pool.h"
#include "daemon/config/options.h"
#include "daemon/net/server.h"
#include "daemon/store/integrity.h"
#include "daemon/store/store.h"
#include "kernels/cpu/parallel.h"
#include "daemon/app/session_memory.h"
#include "engine/model/builtin_model.h"
#include "engine/model/model.h"
#include "engine/serving/engine.h"
#include "engine/tokenizer/chat_template.h"
#include "memory/tiers/host_tier.h"
#include "plugins/providers.h"

extern "C" void openblas_set_num_threads(int);

namespace {

using namespace mnemo;
namespace fs = std::filesystem;

void setup_logging(const daemon::config::Options& o) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
  if (o.log_file) sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(o.log_file->string()));
  auto logger = std::make_shared<spdlog::logger>("mnemod", sinks.begin(), sinks.end());
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(daemon::config::to_string(o.log_level)));
  spdlog::flush_on(spdlog::level::info);
}

engine::ChatTemplate chat_template(const daemon::config::Options& o, const fs::path& model_dir) {
  if (o.chat_template.empty()) return engine::ChatTemplate::for_model(model_dir);
  if (fs::exists(o.chat_template)) return engine::ChatTemplate::from_file(o.chat_template);
  return engine::ChatTemplate::builtin(o.chat_template);
}

// --repair: a damaged file is replaced by what could be read from it.
void repair_store(const fs::path& db) {
  const auto r = daemon::store::repair(db);
  if (!r.needed) {
    spdlog::info("--repair: {} is sound (or absent): nothing to repair", db.string());
    return;
  }
  spdlog::warn("--repair: {} was damaged (PRAGMA quick_check: {}{})", db.string(), r.problems.front(),
               r.problems.size() > 1 ? ", and " + std::to_string(r.problems.size() - 1) + " more findings" : "");
  for (const auto& t : r.tables)
    spdlog::warn("--repair: {}: {} rows recovered, {} damaged regions skipped, {} rows refused (their session or "
                 "program was lost)",
                 t.table, t.copied, t.unreadable, t.refused);
  if (r.sessions_recreated > 0)
    spdlog::warn("--repair: {} sessions had lost their row but kept messages: recreated empty (metadata.mnemo_repair)",
                 r.sessions_recreated);
  spdlog::warn("--repair: the damaged file is kept as {}; serving from the repaired {}", r.damaged_copy.string(),
               db.string());
}

int serve(const daemon::config::Options& o) {
  // Signals are taken by sigwait below, in this thread only.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("mnemod starting: {}", daemon::config::describe(o));
  // A bad tools file is reported before anything slow happens.
  std::optional<plugins::ToolsConfig> tools_config;
  if (o.tools) tools_config = plugins::load_tools_config(*o.tools);
  fs::create_directories(o.data_dir);
  // The store before the model: a damaged file is reported at once, not
  // after a model load.
  const fs::path db_path = o.data_dir / "mnemo.db";
  if (o.repair) repair_store(db_path);
  daemon::store::StoreOptions sopt;
  sopt.durability = o.sync_full ? daemon::store::Durability::Full : daemon::store::Durability::Process;
  auto store = daemon::store::Store::open(db_path, sopt);
  spdlog::info("store {} (schema v{}, {} sessions)", store->path().string(), store->schema_version(),
               store->count_sessions());
  const fs::path model_dir = o.model ? *o.model : engine::ensure_builtin_model(o.data_dir);
  const std::string model_name = o.model ? fs::absolute(*o.model).filename().string() : "mnemo-builtin";
  const int threads = o.threads > 0 ? o.threads : omp_get_num_procs();
  kernels::cpu::set_num_threads(threads);
  omp_set_num_threads(threads);  // faiss and episode clustering
  openblas_set_num_threads(threads);

  const auto model = engine::Model::load(
      model_dir, o.weights == daemon::config::Weights::Resident ? engine::Residency::Resident
          : o.weights == daemon::config::Weights::Copy    ? engine::Residency::Copy
                                                          : engine::Residency::Mapped,
      o.weights_dtype == daemon::config::WeightsDType::Q8_0 ? engine::WeightFormat::Q8_0 : engine::WeightFormat::AsStored);
  const auto tok = engine::Tokenizer::load(model_dir / "tokenizer.json");
  engine::ChatTemplate tmpl = chat_template(o, model_dir);
  engine::EngineOptions eopt;
  eopt.kv_cache_bytes = o.kv_cache_bytes;
  eopt.kv_dtype = o.kv_dtype;
  eopt.scheduler.token_budget = o.token_budget;
  eopt.max_queued = o.max_queued_requests;
  eopt.threads = threads;
  using memory::ttl::RetentionMode;
  const bool retain = o.kv_retention.kind != RetentionMode::Kind::None;
  eopt.retention.program_fcfs = retain;
  if (retain && o.host_kv_bytes > 0)
    eopt.retention.tier = std::make_shared<memory::tiers::HostTier>(o.host_kv_bytes);
  engine::Engine engine(*model, tok, eopt);
  if (!retain)
    spdlog::info("KV retention: none: a program's KV goes back to the prefix cache's LRU at each tool call; "
                 "requests are served first come, first served{}",
                 o.host_kv_bytes > 0 ? " (--host-kv-bytes ignored)" : "");
  else
    spdlog::info("KV retention: {}: a program's KV is kept across a tool call for {}; waiting turns are ordered "
                 "by their program's arrival; host tier {}",
                 o.kv_retention.to_string(),
                 o.kv_retention.kind == RetentionMode::Kind::Fixed
                     ? fmt::format("{} s", o.kv_retention.fixed_seconds)
                     : std::string("a TTL chosen per tool (Continuum's model)"),
                 o.host_kv_bytes > 0 ? fmt::format("of {} bytes", o.host_kv_bytes) : std::string("off"));

  // Workers mostly wait on SQLite commits; more of them means bigger group commits.
  daemon::app::WorkerPool pool(8);
  daemon::app::AppMetrics metrics(engine);
  daemon::app::ContinuumOptions copt;
  copt.mode = o.kv_retention;
  copt.tracker.block_size = eopt.kv_block_size;
  if (retain) copt.host_tier_bytes = o.host_kv_bytes;
  copt.kv_bytes_per_token = engine.kv_bytes_per_token();
  daemon::app::Continuum continuum(copt, engine, store.get(), metrics);
  daemon::app::Responder responder(engine, *model, tok, tmpl, pool, &continuum);
  // Tools last among the parts that can fail at start: a bad file or a
  // missing plugin stops mnemod with one message naming it.
  std::unique_ptr<plugins::ToolRegistry> registry;
  std::unique_ptr<daemon::app::ServerTools> server_tools;
  if (tools_config) {
    registry = plugins::make_registry(*tools_config);
    registry->start();
    server_tools = std::make_unique<daemon::app::ServerTools>(*registry, *store, metrics, &continuum);
    spdlog::info("tools from {}: {} tools ready", o.tools->string(), registry->tools().size());
  }
  daemon::app::SessionApi sessions({size_t(o.max_frame_bytes), o.max_sessions}, *store, responder, pool, metrics,
                                   &continuum, server_tools.get());
  // Sessions created with a "memory" setting: compressed histories, built on
  // the workers with the engine's cache shape.
  engine::kv::KvConfig memory_kv;
  memory_kv.layers = model->config().num_layers;
  memory_kv.kv_heads = model->config().num_kv_heads;
  memory_kv.head_dim = model->config().head_dim;
  memory_kv.block_size = eopt.kv_block_size;
  memory_kv.dtype = eopt.kv_dtype;  // its snapshots are imported into the engine's cache
  daemon::app::SessionMemoryOptions memopt;
  memopt.threads = threads;
  memopt.max_bytes = o.memory_cache_bytes;
  // episodic: windows embedded as /v1/embeddings does (same layer), text
  // tokenized as text (no special tokens, special-token text not parsed).
  memopt.embedding_layer = o.embedding_layer;
  memopt.tokenize = [&tok](std::string_view text) { return tok.encode(text, false, false); };
  memopt.store = store.get();
  daemon::app::SessionMemory session_memory(*model, memory_kv, memopt, metrics.registry);
  sessions.set_memory(&session_memory);
  daemon::app::HttpApi http(model_name, *store, responder, pool, metrics);
  http.set_tools(server_tools.get());
  daemon::app::ResponsesApi responses(model_name, *store, responder, pool, metrics);
  responses.set_max_sessions(o.max_sessions);
  daemon::app::CompletionsApi completions(model_name, tok, responder, pool, metrics);
  http.set_completions(&completions);
  daemon::app::EmbeddingsOptions embopt;
  embopt.layer = o.embedding_layer;
  embopt.threads = threads;
  daemon::app::EmbeddingsApi embeddings(model_name, *model, tok, pool, metrics, embopt);
  http.set_embeddings(&embeddings);
  http.set_responses(&responses);
  daemon::app::ResponsesWs responses_ws(responses, pool, metrics, size_t(o.max_frame_bytes));
  daemon::app::WsRouter sockets;

  daemon::net::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = o.api_key;
  so.max_connections = size_t(o.max_connections);
  so.max_pending_connections = size_t(o.max_pending_connections);
  so.header_timeout_s = o.header_timeout_s;
  so.max_frame_bytes = size_t(o.max_frame_bytes);
  so.max_body_bytes = size_t(o.max_body_bytes);
  so.max_outbound_messages = size_t(o.outbound_queue);
  so.more_ws_paths = {"/v1/responses"};
  sockets.add(so.ws_path, sessions);
  sockets.add("/v1/responses", responses_ws);
  daemon::net::Server server(so, http, sockets);
  server.start();
  spdlog::info("model {} ({}, chat template {}), {} threads, KV pool of {} tokens", model_dir.string(),
               model->config().architecture, responder.family(), threads, engine.kv_capacity_tokens());
  // The one line on stdout: scripts and tests wait for it.
  std::printf("mnemod listening on http://%s:%u\n", o.host.c_str(), unsigned(server.port()));
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("{} received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  sessions.stop_accepting();
  http.stop_accepting();
  responses.stop_accepting();
  engine.shutdown();  // running responses end with finish_reason "shutdown"
  if (registry) registry->stop();  // running tools end at once; their rounds end "shutdown"
  sessions.wait_tools_idle();
  pool.wait_idle();   // ... and their last events are queued on the connections
  server.stop();      // written out, then the sockets close (WebSocket: 1001)
  pool.wait_idle();
  continuum.save();   // what the TTL policy learned since the last write
  spdlog::info("mnemod stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Request bodies and WebSocket messages of several MB come and go. A fixed threshold keeps
  // them in mmapped chunks that free() unmaps; glibc's default would raise it to 32 MB after
  // the first such free and keep them in arenas that never shrink. The net server also
  // malloc_trim()s after large requests (ServerOptions::trim_after_bytes).
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
  daemon::config::Options o;
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    o = daemon::config::parse(args, daemon::config::process_env);
  } catch (const daemon::config::ConfigError& e) {
    std::fprintf(stderr, "mnemod: error: %s\n(see mnemod --help)\n", e.what());
    return 2;
  }
  if (o.help) {
    std::cout << daemon::config::help_text();
    return 0;
  }
  setup_logging(o);
  try {
    return serve(o);
  } catch (const daemon::store::DamagedDatabase& e) {
    // One message with the way forward; a distinct exit code for scripts.
    spdlog::critical(
        "mnemod: {}. mnemod does not serve from a damaged store (a write on damaged pages spreads the damage). "
        "Start it once with --repair (or MNEMO_REPAIR=1): it copies every readable row into a fresh file, keeps "
        "the damaged one beside it as mnemo.db.damaged-<time>, logs what was recovered, then serves.",
        e.what());
    return 3;
  } catch (const std::exception& e) {
    spdlog::critical("mnemod: {}", e.what());
    std::fprintf(stderr, "mnemod: error: %s\n", e.what());
    return 1;
  }
}
