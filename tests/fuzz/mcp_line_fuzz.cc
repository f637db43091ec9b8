// libFuzzer target: the input is one line from an MCP server's stdout.
// mcp::ProtocolError is the only acceptable way to refuse it; an accepted
// message must be a complete JSON-RPC message of its kind.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "plugins/mcp/jsonrpc.h"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "JSON-RPC invariant violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnemo::plugins::mcp;
  try {
    const Message m = parse_line(std::string_view(reinterpret_cast<const char*>(data), size));
    switch (m.kind) {
      case MessageKind::Request:
        if (m.method.empty()) violated("request without a method");
        [[fallthrough]];
      case MessageKind::Result:
        if (!m.id.is_string() && !m.id.is_number_integer() && !m.id.is_number_unsigned()) violated("bad id");
        break;
      case MessageKind::Notification:
        if (m.method.empty()) violated("notification without a method");
        break;
      case MessageKind::Error:
        break;
    }
    // What we would send back must serialise, whatever the id was.
    (void)to_line(make_error(m.id, kMethodNotFound, "x"));
  } catch (const ProtocolError&) {
  }
  return 0;
}
