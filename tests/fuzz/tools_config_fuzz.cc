// libFuzzer target: the input is a --tools file. ToolsConfigError is the
// only acceptable way to refuse it; an accepted file must hold what the
// providers rely on.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "plugins/tools_config.h"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "tools config invariant violated: %s\n", what);
  std::abort();
}

void check_limits(const mnemo::plugins::ToolLimits& l) {
  if (l.timeout.count() <= 0 || l.max_output_bytes == 0 || l.concurrency <= 0) violated("non-positive limit");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnemo::plugins;
  try {
    const ToolsConfig c = parse_tools_config(std::string(reinterpret_cast<const char*>(data), size), "/fuzz/tools.json");
    check_limits(c.defaults);
    for (const auto& s : c.mcp_servers) {
      if (s.name.empty() || s.argv.empty() || s.argv[0].empty()) violated("MCP server without a name or command");
      check_limits(s.limits.all.apply(c.defaults));
      for (const auto& [_, p] : s.limits.by_tool) check_limits(p.apply(c.defaults));
    }
    for (const auto& p : c.plugins)
      if (p.name.empty() || p.path.empty()) violated("plugin without a name or path");
    for (const auto& m : c.commands) {
      if (m.name.empty() || m.argv.empty() || m.argv[0].empty()) violated("command without a name or program");
      if (!m.parameters.is_object()) violated("parameters not an object");
      check_limits(m.limits.all.apply(c.defaults));
    }
  } catch (const ToolsConfigError&) {
  }
  return 0;
}
