// tokenizer.json "decoder": ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace and Sequence; each maps the token strings to new strings as in
// HF's decode_chain, and the results are concatenated.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mnemo::engine {

class Decoder {
 public:
  static Decoder from_json(const nlohmann::json& j, const std::string& where);  // null: join with spaces
  std::string decode(std::vector<std::string> tokens) const;
  // Whether decoding a window of ids that starts mid-sequence differs from
  // the full decode only by a prefix (what streaming relies on). Stripping
  // more than one leading character breaks that.
  bool window_safe() const;

 private:
  struct ByteLevel {};
  struct ByteFallback {};
  struct Fuse {};
  struct Replace { std::string from, to; };
  struct Strip { std::string content; size_t start, stop; };
  struct Metaspace { std::string replacement; bool strip_first_space; };
  using Step = std::variant<ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace>;
  void add(const nlohmann::json& j, const std::string& where);
  std::vector<Step> steps_;
  bool none_ = true;
};

}  // namespace mnemo::engine
