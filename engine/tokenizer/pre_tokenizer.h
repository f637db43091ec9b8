// tokenizer.json "pre_tokenizer": Split (regex or literal, all five
// delimiter behaviours, invert), ByteLevel, Metaspace, Digits, Whitespace,
// WhitespaceSplit and Sequence of those.
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/tokenizer/split_regex.h"

namespace mnemo::engine {

struct PreToken {
  std::string text;
  bool at_input_start;  // begins at offset 0 of the original input (Metaspace "first")
};

class PreTokenizer {
 public:
  static PreTokenizer from_json(const nlohmann::json& j, const std::string& where);  // null: identity
  void apply(std::vector<PreToken>& pieces) const;

  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

 private:
  struct Split {
    std::shared_ptr<const SplitRegex> regex;  // null: literal
    std::string literal;
    Behavior behavior;
    bool invert;
  };
  struct ByteLevel {
    bool add_prefix_space;
    std::shared_ptr<const SplitRegex> regex;  // null: use_regex false
  };
  struct Metaspace {
    std::string replacement;
    enum { Always, First, Never } prepend;
    bool split;
  };
  using Step = std::variant<Split, ByteLevel, Metaspace>;
  void add(const nlohmann::json& j, const std::string& where);
  std::vector<Step> steps_;
};

}  // namespace mnemo::engine
