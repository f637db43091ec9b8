// libFuzzer target: the body of POST /v1/chat/completions. Whatever the
// bytes, parse_chat_completion either returns a request whose fields hold
// what the parser promised, or throws BadRequest / a JSON error that the
// daemon turns into a 400: never anything else, never a crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "daemon/app/chat_completions.h"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "chat completion invariant violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnemo::daemon::app;
  const nlohmann::json body = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size),
                                                    nullptr, false);
  if (body.is_discarded()) return 0;
  try {
    const ChatCompletionRequest r = parse_chat_completion(body);
    if (r.spec.messages.empty()) violated("accepted without messages");
    for (const auto& m : r.spec.messages)
      if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
        violated("accepted an unknown role");
    if ((r.spec.tool_choice == ToolChoiceMode::Required || r.spec.tool_choice == ToolChoiceMode::Function) &&
        r.spec.tools.empty())
      violated("a forced tool call without tools");
    if (r.spec.sampling.max_tokens && *r.spec.sampling.max_tokens < 1) violated("max_tokens below 1");
  } catch (const BadRequest&) {
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
