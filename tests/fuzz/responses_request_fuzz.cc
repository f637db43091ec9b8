// libFuzzer target: the body of POST /v1/responses, through the same JSON
// intake mnemod uses. parse_responses_request either returns a request that
// holds what the parser promised, or throws IntakeError / BadRequest / a
// JSON error that the daemon turns into a 400: never anything else.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "daemon/app/responses_request.h"
#include "daemon/protocol/limits.h"
#include "daemon/protocol/tool_limits.h"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "responses request invariant violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnemo::daemon::app;
  try {
    mnemo::daemon::protocol::IntakeLimits limits;
    limits.max_bytes = size;
    const ResponsesRequest r =
        parse_responses_request(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    if (r.input.empty() && !r.previous_response_id) violated("accepted without input or a previous response");
    if (mnemo::daemon::protocol::compact_json_size(r.tools) > mnemo::daemon::protocol::kMaxToolsBytes)
      violated("tools over the byte limit accepted");
    for (const auto& m : r.input) {
      if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
        violated("accepted an unknown role");
      if (m.role == "tool" && m.tool_call_id.empty()) violated("a function_call_output without its call_id");
      for (const auto& c : m.tool_calls)
        if (c.id.empty() || c.name.empty()) violated("a function_call without call_id or name");
    }
    if ((r.tool_choice == ToolChoiceMode::Required || r.tool_choice == ToolChoiceMode::Function) && r.tools.empty())
      violated("a forced tool call without tools");
    if (r.sampling.max_tokens && *r.sampling.max_tokens < 1) violated("max_output_tokens below 1");
    (void)r.echo_tools.dump();
    (void)r.metadata.dump();
  } catch (const mnemo::daemon::protocol::IntakeError&) {
  } catch (const BadRequest&) {
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
