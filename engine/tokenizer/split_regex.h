// A small backtracking regex engine over code points, covering the syntax
// pre-tokenizer split patterns use (Oniguruma flavour, as HF tokenizers):
// alternation, (?:) (?i:) (?i) (?=) (?!) (?>) groups, greedy/lazy/possessive
// quantifiers including {n,m}, classes with ranges and negation, \p{..} /
// \P{..} general categories, \s \S \d \D \w \W, '.', ^ and $.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::engine {

class SplitRegex {
 public:
  // Throws TokenizerError naming the pattern and the offending offset.
  explicit SplitRegex(std::string_view pattern);

  // Leftmost match starting at or after `from`; false when there is none.
  // Throws TokenizerError if the pattern backtracks without bound.
  bool find(std::span<const char32_t> text, size_t from, size_t& begin, size_t& end) const;

  struct ClassItem {
    uint32_t categories = 0;  // bit per unicode::Category
    bool whitespace = false;
    bool negate = false;
  };
  struct CharClass {
    std::vector<std::pair<char32_t, char32_t>> ranges;
    std::vector<ClassItem> items;
    bool negated = false;
    uint64_t ascii[2] = {0, 0};  // precomputed membership below 128
    bool matches_slow(char32_t cp) const;
    bool matches(char32_t cp) const {
      return cp < 128 ? (ascii[cp >> 6] >> (cp & 63)) & 1 : matches_slow(cp);
    }
  };
  enum class Op : uint8_t { Class, Split, Jump, Match, Look, NegLook, Atomic, Begin, End };
  struct Inst {
    Op op;
    int32_t x = 0;  // class index, jump target or sub-program start
    int32_t y = 0;  // second split target
  };

 private:
  bool run(std::span<const char32_t> text, int32_t pc, size_t pos, size_t& end, size_t& budget) const;

  std::string pattern_;
  std::vector<CharClass> classes_;
  std::vector<Inst> prog_;
  friend class SplitRegexCompiler;
};

}  // namespace mnemo::engine
