// libFuzzer target: the input is a tokenizer.json. TokenizerError is the
// only acceptable way to refuse it; a tokenizer that loads must encode,
// decode and stream-decode text without crashing, and stream decoding must
// agree with decoding all ids at once.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "tokenizer invariant violated: %s\n", what);
  std::abort();
}

void exercise(const mnemo::engine::Tokenizer& tok, std::string_view text) {
  const auto ids = tok.encode(text, true);
  const auto plain = tok.encode(text, false);
  if (plain.size() > ids.size()) violated("special tokens removed ids");
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.vocab_size()) violated("id outside the vocab");
  }
  const std::string full = tok.decode(ids);
  tok.decode(ids, true);
  mnemo::engine::Tokenizer::StreamDecoder stream(tok);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  if (streamed != full) violated("stream decode differs from decode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto j = nlohmann::json::parse(input, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    const auto tok = mnemo::engine::Tokenizer::from_json(j, "fuzz/tokenizer.json");
    exercise(tok, "Hello world! It's 2026:\t 12345 <s> <|im_start|> \xE6\x97\xA5\xE6\x9C\xAC e\xCC\x81  \n\n");
    exercise(tok, input.substr(0, 64));
    tok.token_id("<s>");
    tok.id_to_token(0);
  } catch (const mnemo::engine::TokenizerError&) {
  }
  return 0;
}
