// A tokenizer loaded from a Hugging Face tokenizer.json, producing the same
// ids as the HF `tokenizers` library: added/special tokens split out first,
// then normalizer, pre-tokenizer and BPE model (byte-level as in Llama 3 and
// Qwen2, or SentencePiece-style with byte fallback as in Llama 2 and
// Mistral), then the post-processor's special tokens.
//
// Copies share one immutable model (cheap to copy); encode and decode are
// safe to call from several threads at once (the word cache is locked).
// Loading Llama 3's 9 MB file takes about half a second; encoding 100 KB of
// English takes 5-15 ms (bench/tokenizer_bench.cc).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/tokenizer/error.h"

namespace mnemo::engine {

class Tokenizer {
 public:
  struct Impl;
  // Throws TokenizerError naming the file and the field that was wrong.
  static Tokenizer load(const std::filesystem::path& tokenizer_json);
  // `source` names the origin in error messages (a path, "<generated>").
  static Tokenizer from_json(const nlohmann::json& j, std::string_view source);

  // add_special_tokens applies the post-processor (BOS and the like).
  // Special-token text inside `text` is matched as the special token, as in
  // HF; with match_special_text false it is encoded as ordinary text (HF's
  // encode_special_tokens), so user content cannot inject control tokens.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true,
                              bool match_special_text = true) const;
  // As encode without the post-processor, but a special token's text counts
  // as the token only where `shadow` (a text of the same length) holds the
  // same bytes: the rendering of a conversation whose untrusted strings had
  // their special-token texts blanked out, so that only the template's own
  // markers line up (see prompt_encoder.h). Throws TokenizerError when the
  // lengths differ.
  std::vector<int32_t> encode_with_shadow(std::string_view text, std::string_view shadow) const;
  // Unknown ids are skipped, as in HF.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // One past the largest id of the vocab and the added tokens: the number
  // of embedding rows the ids need.
  int32_t vocab_size() const;
  std::optional<int32_t> token_id(std::string_view token) const;  // added tokens first, then vocab
  std::string id_to_token(int32_t id) const;                     // "" for an unknown id
  bool is_special(int32_t id) const;
  // Whether the id is an added token (special or not), as opposed to a
  // token of the BPE model's vocabulary.
  bool is_added(int32_t id) const;
  // The raw bytes a token contributes in the middle of a decoded text,
  // with no UTF-8 repair (a byte-level token may be part of a character)
  // and no start-of-text stripping. Added tokens give their content; ""
  // for an unknown id. What constrained decoding matches grammars against.
  std::string token_bytes(int32_t id) const;

  // Incremental detokenization for streaming: each push returns the text
  // that became final with that id. Text whose UTF-8 is incomplete (a
  // multi-byte character split across tokens) is held back until it
  // completes or flush() is called.
  class StreamDecoder {
   public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
    std::string push(int32_t id);
    std::string flush();

   private:
    std::shared_ptr<const Impl> impl_;
    bool skip_special_;
    std::vector<int32_t> ids_;
    size_t prefix_ = 0;  // ids before this are fully emitted
    size_t read_ = 0;    // text of ids_[prefix_, read_) is already emitted
  };


 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace mnemo::engine
