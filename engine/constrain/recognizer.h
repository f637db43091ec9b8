// Byte-level pushdown recogniser for a Grammar: accepts a prefix iff it
// can be extended to a complete text of the grammar's root.
//
// The state is a fixed array of small frames (no allocation), so the
// token mask can copy it at every node of the vocabulary trie. A failed
// feed leaves the state unusable: feed a copy when the byte may be wrong.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "engine/constrain/grammar.h"

namespace mnemo::engine {

class Recognizer {
 public:
  static constexpr int kMaxFrames = 64;

  explicit Recognizer(const Grammar& grammar);

  // False when the byte cannot come next (the state is then undefined).
  bool feed(uint8_t byte);
  bool feed(std::string_view bytes);
  // The text so far is a complete text of the grammar.
  bool complete() const;
  // Some byte can still come next.
  bool can_continue() const;

  // Inside a string, between characters: how many more characters fit, and
  // whether the last one was '<' (for forbid_close_tag). The token mask
  // lets plain string tokens through without walking them.
  bool in_plain_string(uint32_t& chars_left, bool& after_lt) const;

  // Copies the live frames only (cheaper than the full array).
  void assign(const Recognizer& other) {
    grammar_ = other.grammar_;
    depth_ = other.depth_;
    for (int i = 0; i < depth_; ++i) frames_[static_cast<size_t>(i)] = other.frames_[static_cast<size_t>(i)];
  }
  Recognizer(const Recognizer& other) { assign(other); }
  Recognizer& operator=(const Recognizer& other) {
    assign(other);
    return *this;
  }

 private:
  struct Frame {
    uint32_t node;
    uint8_t phase;
    uint8_t flag;  // String: last character was '<'
    uint16_t sub;  // String: pending UTF-8 bytes or hex digits; Number: digits in the current part
    uint32_t a;    // chars, items, keys, sequence index, trie node, next property
    uint32_t b;    // Object: key position; String: UTF-8 bounds or surrogate flag
    uint32_t c;    // Object: key candidate
  };
  enum class Step { Consume, Reject, Pass, Again };

  bool push(uint32_t node);
  Step step(Frame& f, uint8_t c);
  Step step_literal(Frame& f, const GrammarNode& n, uint8_t c);
  Step step_string(Frame& f, const GrammarNode& n, uint8_t c);
  Step step_number(Frame& f, const GrammarNode& n, uint8_t c);
  Step step_array(Frame& f, const GrammarNode& n, uint8_t c);
  Step step_object(Frame& f, const GrammarNode& n, uint8_t c);
  Step step_free_object(Frame& f, const GrammarNode& n, uint8_t c);
  bool can_end(const Frame& f) const;

  const Grammar* grammar_ = nullptr;
  int depth_ = 0;
  std::array<Frame, kMaxFrames> frames_;
};

}  // namespace mnemo::engine
