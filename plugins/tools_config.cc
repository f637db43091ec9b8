#include "plugins/tools_config.h"

#include "plugins/json_depth.h"

#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

namespace mnemo::plugins {

namespace {

using Path = std::string;  // "mcpServers.fs.args[1]"

// Every message names the file and the field at fault.
class Reader {
 public:
  explicit Reader(std::filesystem::path file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const Path& at, const std::string& why) const {
    throw ToolsConfigError(file_.string() + ": " + (at.empty() ? "" : at + ": ") + why);
  }

  const Json& object(const Json& j, const Path& at) const {
    if (!j.is_object()) fail(at, "expected an object");
    return j;
  }
  std::string string(const Json& j, const Path& at, bool non_empty = true) const {
    if (!j.is_string()) fail(at, "expected a string");
    auto s = j.get<std::string>();
    if (non_empty && s.empty()) fail(at, "must not be empty");
    return s;
  }
  int64_t integer(const Json& j, const Path& at, int64_t lo, int64_t hi) const {
    if (!j.is_number_integer() && !j.is_number_unsigned()) fail(at, "expected an integer");
    if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(at, "out of range");
    const int64_t v = j.get<int64_t>();
    if (v < lo || v > hi) fail(at, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return v;
  }
  std::vector<std::string> strings(const Json& j, const Path& at) const {
    if (!j.is_array()) fail(at, "expected an array of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < j.size(); ++i) out.push_back(string(j[i], at + "[" + std::to_string(i) + "]", false));
    return out;
  }
  std::map<std::string, std::string> string_map(const Json& j, const Path& at) const {
    object(j, at);
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : j.items()) {
      if (k.empty() || k.find('=') != std::string::npos) fail(at, "'" + k + "' is not a variable name");
      out[k] = string(v, at + "." + k, false);
    }
    return out;
  }
  void known_fields(const Json& j, const Path& at, std::initializer_list<const char*> known) const {
    const std::set<std::string> names(known.begin(), known.end());
    for (const auto& [k, _] : j.items()) {
      if (names.count(k)) continue;
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      fail(at.empty() ? k : at + "." + k, "unknown field (known here: " + list + ")");
    }
  }

  LimitsPatch limits(const Json& j, const Path& at) const {
    object(j, at);
    known_fields(j, at, {"timeout_ms", "max_output_bytes", "concurrency"});
    LimitsPatch p;
    if (j.contains("timeout_ms"))
      p.timeout = std::chrono::milliseconds(integer(j["timeout_ms"], at + ".timeout_ms", 1, 24LL * 3600 * 1000));
    if (j.contains("max_output_bytes"))
      p.max_output_bytes = size_t(integer(j["max_output_bytes"], at + ".max_output_bytes", 1, int64_t(64) << 20));
    if (j.contains("concurrency")) p.concurrency = int(integer(j["concurrency"], at + ".concurrency", 1, 256));
    return p;
  }

  ProviderLimits provider_limits(const Json& j, const Path& at) const {
    ProviderLimits out;
    if (j.contains("limits")) out.all = limits(j["limits"], at + ".limits");
    if (j.contains("tool_limits")) {
      object(j["tool_limits"], at + ".tool_limits");
      for (const auto& [tool, l] : j["tool_limits"].items())
        out.by_tool[tool] = limits(l, at + ".tool_limits." + tool);
    }
    return out;
  }

  // Provider and command names become parts of tool names (OpenAI's
  // function-name alphabet) and log prefixes.
  void name(const std::string& n, const Path& at) const {
    static const std::regex ok("[A-Za-z0-9_-]{1,48}");
    if (!std::regex_match(n, ok)) fail(at, "a name must be 1-48 letters, digits, '_' or '-'");
  }

  std::filesystem::path relative_to_file(const std::string& p) const {
    std::filesystem::path path(p);
    if (path.is_absolute()) return path;
    return file_.parent_path() / path;
  }

 private:
  std::filesystem::path file_;
};

McpServerConfig mcp_server(const Reader& r, const std::string& key, const Json& j) {
  const Path at = "mcpServers." + key;
  r.name(key, at);
  r.object(j, at);
  if (j.contains("type") && j["type"] != "stdio")
    r.fail(at + ".type", "only \"stdio\" servers are supported (a command mnemod starts)");
  if (j.contains("url")) r.fail(at + ".url", "only stdio servers are supported: give \"command\" and \"args\"");
  r.known_fields(j, at, {"type", "command", "args", "env", "cwd", "limits", "tool_limits", "disabled"});
  if (!j.contains("command")) r.fail(at + ".command", "missing (the program that starts the server)");
  McpServerConfig c;
  c.name = key;
  c.argv.push_back(r.string(j["command"], at + ".command"));
  if (j.contains("args"))
    for (auto& a : r.strings(j["args"], at + ".args")) c.argv.push_back(std::move(a));
  if (j.contains("env")) c.env = r.string_map(j["env"], at + ".env");
  if (j.contains("cwd")) c.cwd = r.relative_to_file(r.string(j["cwd"], at + ".cwd")).string();
  c.limits = r.provider_limits(j, at);
  return c;
}

PluginConfig plugin(const Reader& r, const std::string& key, const Json& j) {
  const Path at = "plugins." + key;
  r.name(key, at);
  r.object(j, at);
  r.known_fields(j, at, {"path", "config", "limits", "tool_limits", "disabled"});
  if (!j.contains("path")) r.fail(at + ".path", "missing (the shared library to load)");
  PluginConfig c;
  c.name = key;
  c.path = r.relative_to_file(r.string(j["path"], at + ".path"));
  if (j.contains("config")) c.config = j["config"];
  c.limits = r.provider_limits(j, at);
  return c;
}

CommandConfig command(const Reader& r, const std::string& key, const Json& j) {
  const Path at = "commands." + key;
  r.name(key, at);
  r.object(j, at);
  r.known_fields(j, at, {"argv", "description", "parameters", "env", "env_allow", "cwd", "limits", "disabled"});
  if (!j.contains("argv")) r.fail(at + ".argv", "missing (the program and its arguments; no shell is used)");
  CommandConfig c;
  c.name = key;
  c.argv = r.strings(j["argv"], at + ".argv");
  if (c.argv.empty() || c.argv[0].empty()) r.fail(at + ".argv", "must name a program first");
  if (j.contains("description")) c.description = r.string(j["description"], at + ".description", false);
  if (j.contains("parameters")) {
    const Json& p = r.object(j["parameters"], at + ".parameters");
    // A "type" that is not a string fails here too, not in a json type_error.
    if (p.contains("type") && p["type"] != "object") r.fail(at + ".parameters.type", "must be \"object\"");
    c.parameters = p;
  }
  if (j.contains("env")) c.env = r.string_map(j["env"], at + ".env");
  if (j.contains("env_allow")) c.env_allow = r.strings(j["env_allow"], at + ".env_allow");
  if (j.contains("cwd")) c.cwd = r.relative_to_file(r.string(j["cwd"], at + ".cwd")).string();
  if (j.contains("limits")) c.limits.all = r.limits(j["limits"], at + ".limits");
  return c;
}

bool disabled(const Reader& r, const Json& j, const Path& at) {
  if (!j.is_object() || !j.contains("disabled")) return false;
  if (!j["disabled"].is_boolean()) r.fail(at + ".disabled", "expected true or false");
  return j["disabled"].get<bool>();
}

}  // namespace

ToolLimits LimitsPatch::apply(ToolLimits base) const {
  if (timeout) base.timeout = *timeout;
  if (max_output_bytes) base.max_output_bytes = *max_output_bytes;
  if (concurrency) base.concurrency = *concurrency;
  return base;
}

ToolsConfig parse_tools_config(const std::string& text, const std::filesystem::path& file) {
  const Reader r(file);
  if (json_depth(text) > kMaxJsonDepth)
    r.fail("", "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for a number too large for any type.
    r.fail("", std::string("not valid JSON: ") + e.what());
  }
  r.object(root, "");
  r.known_fields(root, "", {"mcpServers", "plugins", "commands", "limits"});
  ToolsConfig c;
  c.file = file;
  if (root.contains("limits")) c.defaults = r.limits(root["limits"], "limits").apply(c.defaults);
  std::set<std::string> names;
  auto unique = [&](const std::string& key, const Path& at) {
    if (!names.insert(key).second) r.fail(at, "the name '" + key + "' is used twice (names are shared by all sections)");
  };
  if (root.contains("mcpServers")) {
    r.object(root["mcpServers"], "mcpServers");
    for (const auto& [k, v] : root["mcpServers"].items()) {
      if (disabled(r, v, "mcpServers." + k)) continue;
      unique(k, "mcpServers." + k);
      c.mcp_servers.push_back(mcp_server(r, k, v));
    }
  }
  if (root.contains("plugins")) {
    r.object(root["plugins"], "plugins");
    for (const auto& [k, v] : root["plugins"].items()) {
      if (disabled(r, v, "plugins." + k)) continue;
      unique(k, "plugins." + k);
      c.plugins.push_back(plugin(r, k, v));
    }
  }
  if (root.contains("commands")) {
    r.object(root["commands"], "commands");
    for (const auto& [k, v] : root["commands"].items()) {
      if (disabled(r, v, "commands." + k)) continue;
      unique(k, "commands." + k);
      c.commands.push_back(command(r, k, v));
    }
  }
  return c;
}

ToolsConfig load_tools_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ToolsConfigError(file.string() + ": cannot be read");
  // A tools file is a few KB; a huge one is a mistake, not a config.
  constexpr std::streamsize kMax = 4 << 20;
  std::string text(size_t(kMax) + 1, '\0');
  in.read(text.data(), kMax + 1);
  if (in.gcount() > kMax) throw ToolsConfigError(file.string() + ": larger than 4 MiB");
  text.resize(size_t(in.gcount()));
  return parse_tools_config(text, std::filesystem::absolute(file));
}

}  // namespace mnemo::plugins
