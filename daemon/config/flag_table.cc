#include "daemon/config/flag_table.h"

#include <cctype>
#include <stdexcept>
#include <vector>

namespace mnemo::daemon::config {

namespace {

std::string nonempty(const std::string& source, const std::string& value, const char* what) {
  if (value.empty()) bad_value(source, what, value);
  return value;
}

int64_t bytes_at_least(const std::string& source, const std::string& value, int64_t lo) {
  const int64_t n = parse_byte_size(source, value);
  if (n < lo) bad_value(source, "at least " + std::to_string(lo) + " bytes", value);
  return n;
}

constexpr int64_t kMaxCount = int64_t(1) << 40;

std::vector<FlagSpec> make_table() {
  return {
      {"model", "DIR", "the built-in small model",
       "model directory in Hugging Face layout; without it the built-in model is generated into the data dir",
       [](Options& o, const std::string& v, const std::string& s) { o.model = nonempty(s, v, "a directory"); }},
      {"chat-template", "NAME|FILE", "chosen from the model files",
       "chat template: a built-in family (llama3, llama3.1, chatml, mistral) or a template file",
       [](Options& o, const std::string& v, const std::string& s) {
         o.chat_template = nonempty(s, v, "a template name or file");
       }},
      {"threads", "N", "0", "engine threads; 0 uses every core",
       [](Options& o, const std::string& v, const std::string& s) { o.threads = int(parse_integer(s, v, 0, 4096)); }},
      {"weights", "resident|mapped|copy", "resident",
       "resident: weights in 2 MB pages (fast decode), the page cache's own when it holds the file in 2 MB pages, "
       "else a private copy; mapped: the page cache as it is (can be reclaimed and refault from disk); copy: "
       "always a private copy",
       [](Options& o, const std::string& v, const std::string& s) {
         if (v == "resident") o.weights = Weights::Resident;
         else if (v == "mapped") o.weights = Weights::Mapped;
         else if (v == "copy") o.weights = Weights::Copy;
         else bad_value(s, "resident, mapped or copy", v);
       }},
      {"weights-dtype", "auto|q8_0", "auto",
       "auto: matrices as stored; q8_0: quantized at load to 8 bits per value plus an f16 scale per 32 (half of "
       "BF16's memory and decode traffic, logits move by the quantization error)",
       [](Options& o, const std::string& v, const std::string& s) {
         if (v == "auto") o.weights_dtype = WeightsDType::Auto;
         else if (v == "q8_0") o.weights_dtype = WeightsDType::Q8_0;
         else bad_value(s, "auto or q8_0", v);
       }},
      {"kv-cache-bytes", "BYTES", "1G", "memory for the KV cache (suffixes K, M, G, T: 512M, 2G)",
       [](Options& o, const std::string& v, const std::string& s) {
         o.kv_cache_bytes = bytes_at_least(s, v, int64_t(1) << 20);
       }},
      {"kv-dtype", "bf16|f32", "bf16",
       "element type of the KV cache: bf16 stores half the bytes per token, so --kv-cache-bytes holds twice the "
       "tokens and decode at long contexts reads half as much, at 8 significant bits per key and value (logits "
       "move by a few 1e-3 relative); f32 keeps what the forward pass computed exactly",
       [](Options& o, const std::string& v, const std::string& s) {
         const auto t = kernels::parse_kv_dtype(v);
         if (!t) bad_value(s, "bf16 or f32", v);
         o.kv_dtype = *t;
       }},
      {"token-budget", "N", "256", "tokens the scheduler runs per step (decode tokens plus prefill chunks)",
       [](Options& o, const std::string& v, const std::string& s) {
         o.token_budget = parse_integer(s, v, 1, int64_t(1) << 20);
       }},
      {"max-queued-requests", "N", "4096", "requests the engine holds (running or waiting); more get 'overloaded'",
       [](Options& o, const std::string& v, const std::string& s) {
         o.max_queued_requests = parse_integer(s, v, 1, kMaxCount);
       }},
      {"embedding-layer", "N", "0 (the middle layer)",
       "POST /v1/embeddings: the mean over tokens of the hidden state after layer N (1..the model's layers), "
       "L2-normalised; 0 takes the middle layer, whose states carry more of what a text is about than the last "
       "layers (those specialise in predicting the next token) at half the compute",
       [](Options& o, const std::string& v, const std::string& s) {
         o.embedding_layer = parse_integer(s, v, 0, 1 << 16);
       }},
      {"kv-retention", "none|fixed[:SECONDS]|continuum", "continuum",
       "what happens to an agent program's KV while it runs a tool: none: back to the prefix cache's LRU "
       "(request-level FCFS); fixed[:S]: kept S seconds (default 2, the Continuum authors' code); continuum: "
       "kept for a TTL chosen per tool from its recorded durations, the queueing delay and the reload cost",
       [](Options& o, const std::string& v, const std::string& s) {
         try {
           o.kv_retention = memory::ttl::RetentionMode::parse(v);
         } catch (const std::invalid_argument&) {
           bad_value(s, "none, fixed, fixed:SECONDS (0 to 3600) or continuum", v);
         }
       }},
      {"host-kv-bytes", "BYTES", "0",
       "host memory for a KV tier (suffixes K, M, G, T): a program's KV that leaves the pool (TTL expired, "
       "released for room, preempted) is kept there and restored by its next turn; 0: no tier",
       [](Options& o, const std::string& v, const std::string& s) { o.host_kv_bytes = parse_byte_size(s, v); }},
      {"memory-cache-bytes", "BYTES", "256M",
       "host memory for the compressed histories of sessions created with a \"memory\" setting (one cache per "
       "session, one per episode with episodic): the least recently used is dropped first and rebuilt from the "
       "stored messages when next needed",
       [](Options& o, const std::string& v, const std::string& s) {
         o.memory_cache_bytes = bytes_at_least(s, v, int64_t(1) << 20);
       }},
      {"host", "ADDR", "127.0.0.1", "address to listen on",
       [](Options& o, const std::string& v, const std::string& s) { o.host = nonempty(s, v, "an address"); }},
      {"port", "N", "8420", "TCP port; 0 picks a free one",
       [](Options& o, const std::string& v, const std::string& s) { o.port = uint16_t(parse_integer(s, v, 0, 65535)); }},
      {"api-key", "KEY", "none",
       "require 'Authorization: Bearer KEY' on the WebSocket upgrade and every HTTP route but /healthz",
       [](Options& o, const std::string& v, const std::string&) { o.api_key = v; }},
      {"max-connections", "N", "1024",
       "requests being served plus open WebSockets; a request past that gets 503 (an idle or "
       "unauthenticated connection holds none)",
       [](Options& o, const std::string& v, const std::string& s) {
         o.max_connections = parse_integer(s, v, 1, kMaxCount);
       }},
      {"max-pending-connections", "N", "256",
       "connections that have not yet sent a complete request head (or a valid key), plus idle "
       "keep-alive ones; a new one past that closes the one waiting longest",
       [](Options& o, const std::string& v, const std::string& s) {
         o.max_pending_connections = parse_integer(s, v, 1, kMaxCount);
       }},
      {"header-timeout", "SECONDS", "5",
       "time a new or idle keep-alive connection has to send a complete request head; then it is closed",
       [](Options& o, const std::string& v, const std::string& s) {
         o.header_timeout_s = int(parse_integer(s, v, 1, 3600));
       }},
      {"max-frame-bytes", "BYTES", "4M", "largest WebSocket message a client may send",
       [](Options& o, const std::string& v, const std::string& s) { o.max_frame_bytes = bytes_at_least(s, v, 1024); }},
      {"max-body-bytes", "BYTES", "16M", "largest HTTP request body",
       [](Options& o, const std::string& v, const std::string& s) { o.max_body_bytes = bytes_at_least(s, v, 1024); }},
      {"outbound-queue", "N", "1024",
       "messages queued to one WebSocket client; a reader slower than that is closed with code 1013",
       [](Options& o, const std::string& v, const std::string& s) {
         o.outbound_queue = parse_integer(s, v, 1, kMaxCount);
       }},
      {"data-dir", "DIR", "$MNEMO_HOME, else ~/.cache/mnemo", "where sessions (SQLite) and the built-in model live",
       [](Options& o, const std::string& v, const std::string& s) { o.data_dir = nonempty(s, v, "a directory"); }},
      {"sync", "full|process", "full",
       "when an acknowledged message is durable: full: on disk (fsync per write, survives power loss); "
       "process: survives a crash of mnemod (kill -9) but not of the machine, and writes are much faster",
       [](Options& o, const std::string& v, const std::string& s) {
         if (v == "full") o.sync_full = true;
         else if (v == "process") o.sync_full = false;
         else bad_value(s, "full or process", v);
       }},
      {"repair", "", "off",
       "when <data-dir>/mnemo.db fails its startup check (PRAGMA quick_check), copy every readable row into a "
       "fresh file, keep the damaged one beside it as mnemo.db.damaged-<time>, log what was recovered, then "
       "serve; a sound file is left alone",
       [](Options& o, const std::string& v, const std::string& s) { o.repair = parse_bool(s, v); }},
      {"max-sessions", "N", "4096", "sessions stored at once; session.create beyond that gets 'overloaded'",
       [](Options& o, const std::string& v, const std::string& s) {
         o.max_sessions = parse_integer(s, v, 1, kMaxCount);
       }},
      {"tools", "FILE", "none",
       "a JSON file naming the tools mnemod may run itself: MCP stdio servers (\"mcpServers\", the shape MCP "
       "clients use), shared-library plugins (\"plugins\") and subprocess commands (\"commands\"), with "
       "per-tool limits (\"limits\": timeout_ms, max_output_bytes, concurrency); nothing else ever runs. "
       "A response.create with server_tools runs them. See docs/tools.md",
       [](Options& o, const std::string& v, const std::string& s) { o.tools = nonempty(s, v, "a file"); }},
      {"log-level", "LEVEL", "info", "trace, debug, info, warn, error, critical or off",
       [](Options& o, const std::string& v, const std::string& s) { o.log_level = parse_log_level(s, v); }},
      {"log-file", "FILE", "none", "also write logs to FILE",
       [](Options& o, const std::string& v, const std::string& s) { o.log_file = nonempty(s, v, "a file"); }},
  };
}

}  // namespace

std::span<const FlagSpec> flag_table() {
  static const std::vector<FlagSpec> table = make_table();
  return table;
}

std::string env_name(const std::string& flag) {
  std::string out = "MNEMO_";
  for (char c : flag) out += c == '-' ? '_' : char(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace mnemo::daemon::config
