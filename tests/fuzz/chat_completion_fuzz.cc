// libFuzzer target: the body of POST /v1/chat/completions, through the same
// JSON intake mnemod uses. Whatever the bytes, parse_chat_completion either
// returns a request whose fields hold what the parser promised, or throws
// IntakeError / BadRequest / a JSON error that the daemon turns into a 400:
// never anything else, never a crash. Accepted requests are then walked the
// way the daemon walks them (tools dumped, arguments rendered).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "daemon/app/chat_completions.h"
#include "daemon/protocol/limits.h"
#include "daemon/protocol/tool_limits.h"
#include "engine/tokenizer/chat_template.h"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "chat completion invariant violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnemo::daemon::app;
  try {
    mnemo::daemon::protocol::IntakeLimits limits;
    limits.max_bytes = size;
    const ChatCompletionRequest r =
        parse_chat_completion(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    if (mnemo::daemon::protocol::compact_json_size(r.spec.tools) > mnemo::daemon::protocol::kMaxToolsBytes)
      violated("tools over the byte limit accepted");
    if (r.spec.messages.empty()) violated("accepted without messages");
    for (const auto& m : r.spec.messages)
      if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
        violated("accepted an unknown role");
    if ((r.spec.tool_choice == ToolChoiceMode::Required || r.spec.tool_choice == ToolChoiceMode::Function) &&
        r.spec.tools.empty())
      violated("a forced tool call without tools");
    if (r.spec.sampling.max_tokens && *r.spec.sampling.max_tokens < 1) violated("max_tokens below 1");
    // Every built-in template renders what the parser accepted, or refuses it
    // with a TokenizerError; rendered text stays linear in the input.
    for (const char* family : {"llama3", "llama3.1", "chatml", "mistral"}) {
      try {
        const std::string text = mnemo::engine::ChatTemplate::builtin(family).render(r.spec.messages, r.spec.tools, true);
        if (text.size() > 256 * size + 4096) violated("rendered text out of proportion to the request");
      } catch (const mnemo::engine::TokenizerError&) {
      }
    }
  } catch (const mnemo::daemon::protocol::IntakeError&) {
  } catch (const BadRequest&) {
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
