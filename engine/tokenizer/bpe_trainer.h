// Trains a byte-level BPE tokenizer (the Llama 3 layout) on a corpus, for
// generated test models. Deterministic: the same arguments give the same
// JSON, byte for byte.
//
// Layout of the result (a tokenizer.json the HF `tokenizers` library loads):
// - model: BPE over the GPT-2 byte alphabet; ids 0..255 are the 256 bytes in
//   byte order, then one id per learned merge result, in merge order.
//   Merges are chosen by highest pair count over the corpus pre-tokenized
//   with the Llama 3 split regex; ties go to the smaller (left, right) ids.
// - added_tokens: special_tokens in the given order, special: true,
//   normalized: false, with consecutive ids right after the learned vocab.
// - Placeholders: when the corpus runs out of pairs before vocab_size is
//   reached, the remaining ids are `<|reserved_N|>` special added tokens
//   (N from 0) after the given specials. With the bundled corpus this only
//   happens above 4096 (see bpe_trainer_test).
// - pre_tokenizer: Split(Llama 3 regex, Isolated) then ByteLevel without
//   prefix space; decoder ByteLevel; post_processor: TemplateProcessing that
//   prepends bos_token when given (it must be one of special_tokens),
//   otherwise ByteLevel only.
//
// The total number of ids is vocab_size exactly. Throws TokenizerError if
// vocab_size < 256 + special_tokens.size() or bos_token is not a special.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnemo::engine {

nlohmann::json train_byte_level_bpe(std::string_view corpus, int32_t vocab_size,
                                    const std::vector<std::string>& special_tokens,
                                    std::optional<std::string> bos_token);

// The Llama 3 pre-tokenizer split pattern.
extern const char* const kLlama3SplitPattern;

}  // namespace mnemo::engine
