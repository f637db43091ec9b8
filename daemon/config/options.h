#pragma once
// mnemod's settings. Every flag --name has an environment variable
// MNEMO_NAME (dashes become underscores); a flag on the command line wins
// over the variable, which wins over the default. help_text() is the
// --help output and lists every flag with its variable and default.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "daemon/config/config_error.h"
#include "kernels/kv_dtype.h"
#include "memory/ttl/retention_mode.h"

namespace mnemo::daemon::config {

enum class Weights { Resident, Mapped, Copy };
enum class WeightsDType { Auto, Q8_0 };  // auto: as stored; q8_0: quantized at load
enum class LogLevel { Trace, Debug, Info, Warn, Error, Critical, Off };

struct Options {
  // Model and engine.
  std::optional<std::filesystem::path> model;  // absent: the built-in small model
  std::string chat_template;                   // empty: chosen from the model files
  int threads = 0;                             // 0: every core
  Weights weights = Weights::Resident;
  WeightsDType weights_dtype = WeightsDType::Auto;
  int64_t kv_cache_bytes = int64_t(1) << 30;
  kernels::KvDType kv_dtype = kernels::KvDType::BF16;  // element type of the KV cache
  int64_t token_budget = 256;           // scheduler tokens per step
  int64_t max_queued_requests = 4096;   // engine requests waiting or running
  int64_t embedding_layer = 0;          // POST /v1/embeddings pools after this layer; 0: the middle one
  // Agent programs' KV across tool calls (Continuum).
  memory::ttl::RetentionMode kv_retention;  // default continuum
  int64_t host_kv_bytes = 0;                // host-memory tier for KV; 0: none
  int64_t memory_cache_bytes = int64_t(256) << 20;  // compressed session histories held in host memory

  // Network.
  std::string host = "127.0.0.1";
  uint16_t port = 8420;  // 0: any free port
  std::string api_key;   // empty: no authentication
  int64_t max_connections = 1024;          // slots: requests being served plus WebSockets
  int64_t max_pending_connections = 256;   // connections before their request head, or idle
  int header_timeout_s = 5;                // to send a request head
  int64_t max_frame_bytes = int64_t(4) << 20;
  int64_t max_body_bytes = int64_t(16) << 20;
  int64_t outbound_queue = 1024;  // messages per connection

  // State.
  std::filesystem::path data_dir;  // $MNEMO_HOME, else ~/.cache/mnemo
  int64_t max_sessions = 4096;     // sessions stored at once
  bool sync_full = true;           // fsync each acknowledged write (else: survives kill -9 only)
  bool repair = false;             // a damaged mnemo.db: copy what is readable into a fresh file, then serve

  // Tools mnemod runs itself (docs/tools.md).
  std::optional<std::filesystem::path> tools;  // absent: none

  // Logs.
  LogLevel log_level = LogLevel::Info;
  std::optional<std::filesystem::path> log_file;  // absent: stderr only

  bool help = false;  // --help was given: print help_text() and exit 0
};

using Getenv = std::function<std::optional<std::string>(const std::string&)>;

// args: the command line without the program name. Accepts "--name VALUE"
// and "--name=VALUE"; a switch (--repair) takes no value, or "--name=BOOL".
// An environment variable set to "" counts as unset.
// Throws ConfigError naming the flag or variable and the bad value.
Options parse(std::span<const std::string> args, const Getenv& getenv);

// The process environment, for parse().
std::optional<std::string> process_env(const std::string& name);

std::string help_text();

// "512M", "2G", "1048576", "64KiB": binary multiples (K = 1024). Throws
// ConfigError naming `what` (the flag or variable) and the text.
int64_t parse_byte_size(const std::string& what, const std::string& text);

std::string to_string(LogLevel level);  // "info", ... (spdlog's names)
std::string to_string(Weights weights);  // "resident" or "mapped"
std::string to_string(WeightsDType d);    // "auto" or "q8_0"

// The settings as one line for the startup log; the API key is redacted.
std::string describe(const Options& o);

}  // namespace mnemo::daemon::config
