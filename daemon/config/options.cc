#include "daemon/config/options.h"

#include <cstdlib>
#include <sstream>
#include <utility>
#include <vector>

#include "daemon/config/flag_table.h"

namespace mnemo::daemon::config {

namespace fs = std::filesystem;

namespace {

const FlagSpec* find_flag(std::string_view name) {
  for (const FlagSpec& f : flag_table())
    if (name == f.name) return &f;
  return nullptr;
}

// Same rule as the mnemo CLI's built-in model location, so both share it.
fs::path default_data_dir(const Getenv& getenv) {
  auto set = [&](const char* name) -> std::optional<std::string> {
    auto v = getenv(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  if (auto home = set("MNEMO_HOME")) return *home;
  if (auto user = set("HOME")) return fs::path(*user) / ".cache" / "mnemo";
  return fs::temp_directory_path() / "mnemo";
}

}  // namespace

Options parse(std::span<const std::string> args, const Getenv& getenv) {
  Options o;
  // Flags first so an unknown flag is reported even when a variable is bad,
  // and a variable overridden by its flag is never looked at.
  std::vector<std::pair<const FlagSpec*, std::string>> given;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      continue;
    }
    if (!arg.starts_with("--") || arg.size() == 2)
      throw ConfigError("unexpected argument '" + arg + "' (flags are --name VALUE; see --help)");
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const FlagSpec* f = find_flag(name);
    if (!f) throw ConfigError("unknown flag '--" + name + "' (see --help)");
    if (*f->meta == '\0' && eq == std::string::npos) {
      given.emplace_back(f, "true");  // a switch
    } else if (eq != std::string::npos) {
      given.emplace_back(f, arg.substr(eq + 1));
    } else {
      if (i + 1 >= args.size() || args[i + 1].starts_with("--"))
        throw ConfigError("--" + name + " needs a value (" + f->meta + ")");
      given.emplace_back(f, args[++i]);
    }
  }
  if (o.help) return o;

  for (const FlagSpec& f : flag_table()) {
    bool on_command_line = false;
    for (auto& [g, v] : given) on_command_line |= g == &f;
    if (on_command_line) continue;
    const std::string var = env_name(f.name);
    if (auto v = getenv(var); v && !v->empty()) f.apply(o, *v, var);
  }
  for (auto& [f, v] : given) f->apply(o, v, std::string("--") + f->name);

  if (o.data_dir.empty()) o.data_dir = default_data_dir(getenv);
  return o;
}

std::optional<std::string> process_env(const std::string& name) {
  if (const char* v = std::getenv(name.c_str())) return std::string(v);
  return std::nullopt;
}

std::string help_text() {
  std::ostringstream out;
  out << "Usage: mnemod [--name VALUE | --name=VALUE]...\n\n"
         "Serves LLM inference to agents: Mnemo's session protocol over WebSocket at /v1/ws\n"
         "(docs/protocol.md) and an OpenAI-compatible HTTP API under /v1.\n"
         "Every flag has an environment variable; a flag on the command line wins over it,\n"
         "and a variable set to the empty string counts as unset.\n\n";
  for (const FlagSpec& f : flag_table()) {
    if (*f.meta == '\0')
      out << "  --" << f.name << "   (" << env_name(f.name) << "=1; default: " << f.dflt << ")\n";
    else
      out << "  --" << f.name << ' ' << f.meta << "   (" << env_name(f.name) << "; default: " << f.dflt << ")\n";
    out << "      " << f.meaning << "\n";
  }
  out << "  --help\n      print this and exit\n";
  out << "\nConnection limits:\n"
         "  A connection is pending until it has sent a complete request head within\n"
         "  --header-timeout seconds (and, with --api-key, the right key). At most\n"
         "  --max-pending-connections are pending; a new connection past that closes the one\n"
         "  pending longest, so idle or slow-sending sockets cannot lock out a client that\n"
         "  sends its request promptly. An admitted request then takes one of --max-connections\n"
         "  slots until its answer is written (503 when none is free), with 30 s to receive its\n"
         "  body (up to --max-body-bytes); a WebSocket keeps its slot until it closes.\n"
         "  Between keep-alive requests a connection is pending again: idle for longer than\n"
         "  --header-timeout, it is closed. /healthz is answered without a slot and without a\n"
         "  key. Requests of 1 MiB or more are followed by returning freed memory to the system.\n";
  return out.str();
}

std::string describe(const Options& o) {
  std::ostringstream out;
  out << "model=" << (o.model ? o.model->string() : std::string("built-in"))
      << " chat_template=" << (o.chat_template.empty() ? std::string("auto") : o.chat_template)
      << " threads=" << o.threads << " weights=" << to_string(o.weights)
      << " weights_dtype=" << to_string(o.weights_dtype) << " kv_cache_bytes=" << o.kv_cache_bytes
      << " kv_dtype=" << kernels::kv_dtype_name(o.kv_dtype)
      << " token_budget=" << o.token_budget << " max_queued_requests=" << o.max_queued_requests
      << " kv_retention=" << o.kv_retention.to_string() << " host_kv_bytes=" << o.host_kv_bytes << " memory_cache_bytes=" << o.memory_cache_bytes
      << " listen=" << o.host << ':' << o.port << " api_key=" << (o.api_key.empty() ? "none" : "set")
      << " max_connections=" << o.max_connections << " max_pending_connections=" << o.max_pending_connections
      << " header_timeout=" << o.header_timeout_s << "s max_frame_bytes=" << o.max_frame_bytes
      << " max_body_bytes=" << o.max_body_bytes << " outbound_queue=" << o.outbound_queue
      << " data_dir=" << o.data_dir.string() << " sync=" << (o.sync_full ? "full" : "process") << " repair=" << (o.repair ? "on" : "off") << " max_sessions=" << o.max_sessions
      << " tools=" << (o.tools ? o.tools->string() : "none")
      << " log_level=" << to_string(o.log_level) << " log_file=" << (o.log_file ? o.log_file->string() : "none");
  return out.str();
}

}  // namespace mnemo::daemon::config
