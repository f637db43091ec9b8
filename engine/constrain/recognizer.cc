#include "engine/constrain/recognizer.h"

#include <cstring>

namespace mnemo::engine {

namespace {

using Kind = GrammarNode::Kind;

// Phases per node kind. Every kind's last phase is Closed: the value is
// whole and hands the next byte back to its parent.
enum StringPhase : uint8_t { kStrOpen, kStrIn, kStrEscape, kStrHex, kStrUtf8, kStrClosed };
enum NumberPhase : uint8_t { kNumStart, kNumMinus, kNumZero, kNumInt, kNumDot, kNumFrac, kNumE, kNumESign, kNumExp };
enum ArrayPhase : uint8_t { kArrOpen, kArrFirst, kArrAfter, kArrSpace, kArrItem, kArrClosed };
enum ObjectPhase : uint8_t {
  kObjOpen,
  kObjFirst,
  kObjKey,
  kObjColon,
  kObjValueSpace,
  kObjValue,
  kObjAfter,
  kObjKeySpace,
  kObjKeyQuote,
  kObjClosed
};

bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

Recognizer::Recognizer(const Grammar& grammar) : grammar_(&grammar) { push(grammar.root()); }

bool Recognizer::push(uint32_t node) {
  if (depth_ == kMaxFrames) return false;
  frames_[static_cast<size_t>(depth_++)] = Frame{node, 0, 0, 0, 0, 0, 0};
  return true;
}

bool Recognizer::feed(uint8_t c) {
  // Each round either consumes, rejects, pops a finished frame or pushes
  // one, and pushes are bounded by the grammar, so this ends.
  while (depth_ > 0) {
    switch (step(frames_[static_cast<size_t>(depth_ - 1)], c)) {
      case Step::Consume: return true;
      case Step::Reject: return false;
      case Step::Pass: --depth_; break;
      case Step::Again: break;
    }
  }
  return false;  // the text was already complete
}

bool Recognizer::feed(std::string_view bytes) {
  for (const char ch : bytes)
    if (!feed(static_cast<uint8_t>(ch))) return false;
  return true;
}

bool Recognizer::complete() const {
  for (int i = 0; i < depth_; ++i)
    if (!can_end(frames_[static_cast<size_t>(i)])) return false;
  return true;
}

bool Recognizer::can_continue() const {
  for (int b = 0; b < 256; ++b) {
    Recognizer r(*this);
    if (r.feed(static_cast<uint8_t>(b))) return true;
  }
  return false;
}

bool Recognizer::in_plain_string(uint32_t& chars_left, bool& after_lt) const {
  if (depth_ == 0) return false;
  const Frame& f = frames_[static_cast<size_t>(depth_ - 1)];
  const GrammarNode& n = grammar_->node(f.node);
  if (n.kind != Kind::String || f.phase != kStrIn) return false;
  chars_left = n.max_count - f.a;
  after_lt = f.flag != 0 && grammar_->limits().forbid_close_tag;
  return true;
}

bool Recognizer::can_end(const Frame& f) const {
  const GrammarNode& n = grammar_->node(f.node);
  switch (n.kind) {
    case Kind::Literal: return n.trie[f.a].terminal && n.trie[f.a].next < 0;
    case Kind::Seq: return f.a == n.parts.size();
    case Kind::String: return f.phase == kStrClosed;
    case Kind::Number: return f.phase == kNumZero || f.phase == kNumInt || f.phase == kNumFrac || f.phase == kNumExp;
    case Kind::Array: return f.phase == kArrClosed;
    case Kind::Object:
    case Kind::FreeObject: return f.phase == kObjClosed;
    case Kind::Union: return false;
  }
  return false;
}

Recognizer::Step Recognizer::step(Frame& f, uint8_t c) {
  const GrammarNode& n = grammar_->node(f.node);
  switch (n.kind) {
    case Kind::Literal: return step_literal(f, n, c);
    case Kind::Seq:
      if (f.a == n.parts.size()) return Step::Pass;
      return push(n.parts[f.a++]) ? Step::Again : Step::Reject;
    case Kind::String: return step_string(f, n, c);
    case Kind::Number: return step_number(f, n, c);
    case Kind::Array: return step_array(f, n, c);
    case Kind::Object: return step_object(f, n, c);
    case Kind::FreeObject: return step_free_object(f, n, c);
    case Kind::Union: {
      const int32_t alt = n.dispatch[c];
      if (alt < 0) return Step::Reject;
      f = Frame{static_cast<uint32_t>(alt), 0, 0, 0, 0, 0, 0};  // the chosen alternative takes this frame
      return Step::Again;
    }
  }
  return Step::Reject;
}

Recognizer::Step Recognizer::step_literal(Frame& f, const GrammarNode& n, uint8_t c) {
  const GrammarNode::TrieNode& t = n.trie[f.a];
  for (const auto& e : t.edges) {
    if (e.byte == c) {
      f.a = e.to;
      return Step::Consume;
    }
  }
  if (!t.terminal) return Step::Reject;
  if (t.next < 0) return Step::Pass;
  f = Frame{static_cast<uint32_t>(t.next), 0, 0, 0, 0, 0, 0};
  return Step::Again;
}

Recognizer::Step Recognizer::step_string(Frame& f, const GrammarNode& n, uint8_t c) {
  switch (f.phase) {
    case kStrOpen:
      if (c != '"') return Step::Reject;
      f.phase = kStrIn;
      return Step::Consume;
    case kStrIn:
      if (c == '"') {
        if (f.a < n.min_count) return Step::Reject;
        f.phase = kStrClosed;
        return Step::Consume;
      }
      if (f.a >= n.max_count || c < 0x20) return Step::Reject;
      if (c == '\\') {
        f.phase = kStrEscape;
        return Step::Consume;
      }
      if (c < 0x80) {
        if (c == '/' && f.flag && grammar_->limits().forbid_close_tag) return Step::Reject;
        f.flag = c == '<';
        ++f.a;
        return Step::Consume;
      }
      // A UTF-8 lead byte: how many continuation bytes follow and the range
      // of the first one (no overlong forms, no surrogates, <= U+10FFFF).
      {
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) f.sub = 1;
        else if (c == 0xE0) f.sub = 2, lo = 0xA0;
        else if (c == 0xED) f.sub = 2, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) f.sub = 2;
        else if (c == 0xF0) f.sub = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) f.sub = 3;
        else if (c == 0xF4) f.sub = 3, hi = 0x8F;
        else return Step::Reject;
        f.b = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 8);
        f.phase = kStrUtf8;
        f.flag = 0;
        return Step::Consume;
      }
    case kStrUtf8:
      if (c < (f.b & 0xFF) || c > (f.b >> 8)) return Step::Reject;
      f.b = 0x80 | (0xBF << 8);
      if (--f.sub == 0) {
        ++f.a;
        f.phase = kStrIn;
      }
      return Step::Consume;
    case kStrEscape:
      if (c == 'u') {
        f.phase = kStrHex;
        f.sub = 0;
        f.b = 0;
        return Step::Consume;
      }
      if (!std::strchr("\"\\/bfnrt", c) || c == 0) return Step::Reject;
      ++f.a;
      f.flag = 0;
      f.phase = kStrIn;
      return Step::Consume;
    case kStrHex:
      if (!is_hex(c)) return Step::Reject;
      // \uD800-\uDFFF would make a pair count as two characters; keep one
      // escape one character.
      if (f.sub == 0) f.b = c == 'd' || c == 'D';
      else if (f.sub == 1 && f.b && !(c >= '0' && c <= '7')) return Step::Reject;
      if (++f.sub == 4) {
        ++f.a;
        f.flag = 0;
        f.phase = kStrIn;
      }
      return Step::Consume;
    default:
      return Step::Pass;
  }
}

Recognizer::Step Recognizer::step_number(Frame& f, const GrammarNode& n, uint8_t c) {
  const GrammarLimits& lim = grammar_->limits();
  auto go = [&](uint8_t phase, uint16_t digits) {
    f.phase = phase;
    f.sub = digits;
    return Step::Consume;
  };
  const bool fraction_ok = !n.integer;
  switch (f.phase) {
    case kNumStart:
      if (c == '-' && !n.non_negative) return go(kNumMinus, 0);
      [[fallthrough]];
    case kNumMinus:
      if (c == '0') return go(kNumZero, 1);
      if (c >= '1' && c <= '9') return go(kNumInt, 1);
      return Step::Reject;
    case kNumInt:
      if (is_digit(c)) return f.sub < lim.max_int_digits ? go(kNumInt, static_cast<uint16_t>(f.sub + 1)) : Step::Pass;
      [[fallthrough]];
    case kNumZero:
      if (c == '.' && fraction_ok) return go(kNumDot, 0);
      if ((c == 'e' || c == 'E') && fraction_ok) return go(kNumE, 0);
      return Step::Pass;
    case kNumDot:
      return is_digit(c) ? go(kNumFrac, 1) : Step::Reject;
    case kNumFrac:
      if (is_digit(c)) return f.sub < lim.max_frac_digits ? go(kNumFrac, static_cast<uint16_t>(f.sub + 1)) : Step::Pass;
      if (c == 'e' || c == 'E') return go(kNumE, 0);
      return Step::Pass;
    case kNumE:
      if (c == '+' || c == '-') return go(kNumESign, 0);
      [[fallthrough]];
    case kNumESign:
      return is_digit(c) ? go(kNumExp, 1) : Step::Reject;
    case kNumExp:
      if (is_digit(c) && f.sub < lim.max_exp_digits) return go(kNumExp, static_cast<uint16_t>(f.sub + 1));
      return Step::Pass;
  }
  return Step::Reject;
}

Recognizer::Step Recognizer::step_array(Frame& f, const GrammarNode& n, uint8_t c) {
  auto next_item = [&] {
    f.phase = kArrAfter;
    ++f.a;
    return push(n.item) ? Step::Again : Step::Reject;
  };
  switch (f.phase) {
    case kArrOpen:
      if (c != '[') return Step::Reject;
      f.phase = kArrFirst;
      return Step::Consume;
    case kArrFirst:
      if (c == ']' && n.min_count == 0) {
        f.phase = kArrClosed;
        return Step::Consume;
      }
      return n.max_count > 0 ? next_item() : Step::Reject;
    case kArrAfter:
      if (c == ',' && f.a < n.max_count) {
        f.phase = kArrSpace;
        return Step::Consume;
      }
      if (c == ']' && f.a >= n.min_count) {
        f.phase = kArrClosed;
        return Step::Consume;
      }
      return Step::Reject;
    case kArrSpace:
      if (c == ' ') {
        f.phase = kArrItem;
        return Step::Consume;
      }
      return next_item();
    case kArrItem:
      return next_item();
    default:
      return Step::Pass;
  }
}

Recognizer::Step Recognizer::step_object(Frame& f, const GrammarNode& n, uint8_t c) {
  const auto count = static_cast<uint32_t>(n.props.size());
  // f.a: properties before it are settled. A key may name any property
  // from f.a up to and including the first required one.
  auto start_key = [&] {
    f.phase = kObjKey;
    f.b = 1;  // the opening quote, shared by every key literal
    f.c = f.a;
    return Step::Consume;
  };
  switch (f.phase) {
    case kObjOpen:
      if (c != '{') return Step::Reject;
      f.phase = kObjFirst;
      return Step::Consume;
    case kObjFirst:
    case kObjAfter:
      if (c == '}' && n.required_from[f.a] == count) {
        f.phase = kObjClosed;
        return Step::Consume;
      }
      if (f.phase == kObjFirst) return c == '"' && count > 0 ? start_key() : Step::Reject;
      if (c == ',' && f.a < count) {
        f.phase = kObjKeySpace;
        return Step::Consume;
      }
      return Step::Reject;
    case kObjKeySpace:
      if (c == ' ') {
        f.phase = kObjKeyQuote;
        return Step::Consume;
      }
      [[fallthrough]];
    case kObjKeyQuote:
      return c == '"' ? start_key() : Step::Reject;
    case kObjKey: {
      const uint32_t last = std::min(n.required_from[f.a], count - 1);
      const std::string& current = n.props[f.c].key;
      for (uint32_t j = f.c; j <= last; ++j) {
        const std::string& k = n.props[j].key;
        if (k.size() > f.b && static_cast<uint8_t>(k[f.b]) == c && k.compare(0, f.b, current, 0, f.b) == 0) {
          f.c = j;
          if (++f.b == k.size()) f.phase = kObjColon;  // key literals are prefix-free: each ends at its closing quote
          return Step::Consume;
        }
      }
      return Step::Reject;
    }
    case kObjColon:
      if (c != ':') return Step::Reject;
      f.phase = kObjValueSpace;
      return Step::Consume;
    case kObjValueSpace:
      if (c == ' ') {
        f.phase = kObjValue;
        return Step::Consume;
      }
      [[fallthrough]];
    case kObjValue:
      f.phase = kObjAfter;
      f.a = f.c + 1;
      return push(n.props[f.c].value) ? Step::Again : Step::Reject;
    default:
      return Step::Pass;
  }
}

Recognizer::Step Recognizer::step_free_object(Frame& f, const GrammarNode& n, uint8_t c) {
  auto key = [&] {
    f.phase = kObjColon;
    ++f.a;
    return push(n.key) ? Step::Again : Step::Reject;
  };
  switch (f.phase) {
    case kObjOpen:
      if (c != '{') return Step::Reject;
      f.phase = kObjFirst;
      return Step::Consume;
    case kObjFirst:
    case kObjAfter:
      if (c == '}') {
        f.phase = kObjClosed;
        return Step::Consume;
      }
      if (f.phase == kObjFirst) return c == '"' && n.max_count > 0 ? key() : Step::Reject;
      if (c == ',' && f.a < n.max_count) {
        f.phase = kObjKeySpace;
        return Step::Consume;
      }
      return Step::Reject;
    case kObjKeySpace:
      if (c == ' ') {
        f.phase = kObjKeyQuote;
        return Step::Consume;
      }
      [[fallthrough]];
    case kObjKeyQuote:
      return c == '"' ? key() : Step::Reject;
    case kObjColon:
      if (c != ':') return Step::Reject;
      f.phase = kObjValueSpace;
      return Step::Consume;
    case kObjValueSpace:
      if (c == ' ') {
        f.phase = kObjValue;
        return Step::Consume;
      }
      [[fallthrough]];
    case kObjValue:
      f.phase = kObjAfter;
      return push(n.item) ? Step::Again : Step::Reject;
    default:
      return Step::Pass;
  }
}

}  // namespace mnemo::engine
