#include "engine/tokenizer/split_regex.h"

#include <memory>

#include "engine/tokenizer/error.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/utf8.h"

namespace mnemo::engine {

namespace {

using unicode::Category;

constexpr uint32_t bit(Category c) { return 1u << static_cast<unsigned>(c); }
constexpr uint32_t kLetters = bit(Category::Lu) | bit(Category::Ll) | bit(Category::Lt) | bit(Category::Lm) | bit(Category::Lo);
constexpr uint32_t kMarks = bit(Category::Mn) | bit(Category::Mc) | bit(Category::Me);
constexpr uint32_t kNumbers = bit(Category::Nd) | bit(Category::Nl) | bit(Category::No);
constexpr uint32_t kPunct = bit(Category::Pc) | bit(Category::Pd) | bit(Category::Ps) | bit(Category::Pe) |
                            bit(Category::Pi) | bit(Category::Pf) | bit(Category::Po);
constexpr uint32_t kSymbols = bit(Category::Sm) | bit(Category::Sc) | bit(Category::Sk) | bit(Category::So);
constexpr uint32_t kSeparators = bit(Category::Zs) | bit(Category::Zl) | bit(Category::Zp);
constexpr uint32_t kOther = bit(Category::Cc) | bit(Category::Cf) | bit(Category::Cs) | bit(Category::Co) | bit(Category::Cn);

struct Node {
  enum Kind { Empty, Class, Concat, Alt, Repeat, Look, NegLook, Atomic, Begin, End } kind = Empty;
  int32_t cls = -1;
  std::vector<std::unique_ptr<Node>> kids;
  int min = 0, max = -1;  // max -1: unbounded
  bool greedy = true, possessive = false;
};

}  // namespace

class SplitRegexCompiler {
 public:
  SplitRegexCompiler(SplitRegex& re, std::string_view pattern) : re_(re) {
    for (size_t i = 0, len = 0; i < pattern.size(); i += len) {
      cps_.push_back(utf8::decode(pattern, i, len));
    }
  }

  void compile() {
    auto root = parse_alt(false);
    if (pos_ != cps_.size()) fail("unbalanced ')'");
    emit(*root);
    re_.prog_.push_back({SplitRegex::Op::Match});
    for (auto& cls : re_.classes_) {
      for (char32_t c = 0; c < 128; ++c) {
        if (cls.matches_slow(c)) cls.ascii[c >> 6] |= uint64_t{1} << (c & 63);
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw TokenizerError("split regex '" + re_.pattern_ + "': " + why + " at offset " + std::to_string(pos_));
  }
  bool at_end() const { return pos_ >= cps_.size(); }
  char32_t peek(size_t ahead = 0) const { return pos_ + ahead < cps_.size() ? cps_[pos_ + ahead] : 0; }
  char32_t next() {
    if (at_end()) fail("unexpected end");
    return cps_[pos_++];
  }

  std::unique_ptr<Node> parse_alt(bool icase) {
    auto first = parse_concat(icase);
    if (peek() != '|' || at_end()) return first;
    auto alt = std::make_unique<Node>();
    alt->kind = Node::Alt;
    alt->kids.push_back(std::move(first));
    while (!at_end() && peek() == '|') {
      ++pos_;
      alt->kids.push_back(parse_concat(icase));
    }
    return alt;
  }

  std::unique_ptr<Node> parse_concat(bool icase) {
    auto seq = std::make_unique<Node>();
    seq->kind = Node::Concat;
    while (!at_end() && peek() != '|' && peek() != ')') {
      if (peek() == '(' && peek(1) == '?' && peek(2) == 'i' && peek(3) == ')') {
        pos_ += 4;  // (?i) turns case folding on for the rest of the group
        icase = true;
        continue;
      }
      auto atom = parse_atom(icase);
      seq->kids.push_back(parse_quantifier(std::move(atom)));
    }
    return seq;
  }

  std::unique_ptr<Node> parse_quantifier(std::unique_ptr<Node> atom) {
    while (!at_end()) {
      int lo, hi;
      const char32_t c = peek();
      if (c == '*') { lo = 0; hi = -1; ++pos_; }
      else if (c == '+') { lo = 1; hi = -1; ++pos_; }
      else if (c == '?') { lo = 0; hi = 1; ++pos_; }
      else if (c == '{' && peek(1) >= '0' && peek(1) <= '9') {
        ++pos_;
        lo = parse_int();
        hi = lo;
        if (peek() == ',') {
          ++pos_;
          hi = peek() == '}' ? -1 : parse_int();
        }
        if (next() != '}') fail("bad {n,m}");
        if (hi != -1 && hi < lo) fail("{n,m} with m < n");
        if (lo > 1000 || hi > 1000) fail("repetition count over 1000");
      } else {
        return atom;
      }
      auto rep = std::make_unique<Node>();
      rep->kind = Node::Repeat;
      rep->min = lo;
      rep->max = hi;
      if (peek() == '?') { rep->greedy = false; ++pos_; }
      else if (peek() == '+') { rep->possessive = true; ++pos_; }
      rep->kids.push_back(std::move(atom));
      atom = std::move(rep);
    }
    return atom;
  }

  int parse_int() {
    int v = 0;
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a number");
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<int>(next() - '0');
      if (v > 100000) fail("number too large");
    }
    return v;
  }

  std::unique_ptr<Node> class_node(SplitRegex::CharClass cls) {
    auto n = std::make_unique<Node>();
    n->kind = Node::Class;
    n->cls = static_cast<int32_t>(re_.classes_.size());
    re_.classes_.push_back(std::move(cls));
    return n;
  }

  // Oniguruma folds case with Unicode tables; the patterns only fold ASCII
  // contractions, plus the two non-ASCII characters that fold to ASCII.
  static void add_case_variants(SplitRegex::CharClass& cls) {
    const auto ranges = cls.ranges;
    for (auto [lo, hi] : ranges) {
      for (char32_t c = lo; c <= hi && c < 128; ++c) {
        if (c >= 'a' && c <= 'z') cls.ranges.push_back({c - 32, c - 32});
        if (c >= 'A' && c <= 'Z') cls.ranges.push_back({c + 32, c + 32});
        if (c == 's' || c == 'S') cls.ranges.push_back({0x17F, 0x17F});
        if (c == 'k' || c == 'K') cls.ranges.push_back({0x212A, 0x212A});
      }
    }
  }

  std::unique_ptr<Node> parse_atom(bool icase) {
    const char32_t c = next();
    switch (c) {
      case '(': return parse_group(icase);
      case '[': {
        auto cls = parse_class();
        if (icase) add_case_variants(cls);
        return class_node(std::move(cls));
      }
      case '.': {
        SplitRegex::CharClass cls;
        cls.negated = true;
        cls.ranges.push_back({'\n', '\n'});
        return class_node(std::move(cls));
      }
      case '^': { auto n = std::make_unique<Node>(); n->kind = Node::Begin; return n; }
      case '$': { auto n = std::make_unique<Node>(); n->kind = Node::End; return n; }
      case '*': case '+': case '?': fail("quantifier without operand");
      case ')': fail("unbalanced ')'");
      default: break;
    }
    SplitRegex::CharClass cls;
    if (c == '\\') {
      parse_escape(cls);
    } else {
      cls.ranges.push_back({c, c});
    }
    if (icase) add_case_variants(cls);
    return class_node(std::move(cls));
  }

  std::unique_ptr<Node> parse_group(bool icase) {
    // Bounded so a hostile pattern cannot exhaust the stack.
    if (++depth_ > 64) fail("groups nested deeper than 64");
    Node::Kind kind = Node::Concat;
    if (peek() == '?') {
      ++pos_;
      const char32_t k = next();
      if (k == ':') {
      } else if (k == '=') {
        kind = Node::Look;
      } else if (k == '!') {
        kind = Node::NegLook;
      } else if (k == '>') {
        kind = Node::Atomic;
      } else if (k == 'i' && peek() == ':') {
        ++pos_;
        icase = true;
      } else if (k == '<' && peek() != '=' && peek() != '!') {
        while (!at_end() && peek() != '>') ++pos_;  // named group: the name does not matter here
        next();
      } else {
        fail("unsupported group syntax");
      }
    }
    auto body = parse_alt(icase);
    if (at_end() || next() != ')') fail("missing ')'");
    --depth_;
    if (kind == Node::Concat) return body;
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->kids.push_back(std::move(body));
    return n;
  }

  char32_t parse_hex(size_t max_digits, bool braced) {
    char32_t v = 0;
    size_t n = 0;
    while (n < max_digits && !at_end() && std::isxdigit(static_cast<int>(peek() < 128 ? peek() : 0))) {
      const char32_t d = next();
      v = v * 16 + static_cast<char32_t>(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
      ++n;
    }
    if (n == 0) fail("bad hex escape");
    if (braced && next() != '}') fail("missing '}' in hex escape");
    if (v > 0x10FFFF) fail("code point out of range");
    return v;
  }

  uint32_t parse_property_name(std::string name) {
    static const std::pair<const char*, uint32_t> kNames[] = {
        {"L", kLetters}, {"Letter", kLetters}, {"N", kNumbers}, {"Number", kNumbers},
        {"M", kMarks}, {"Mark", kMarks}, {"P", kPunct}, {"Punctuation", kPunct},
        {"S", kSymbols}, {"Symbol", kSymbols}, {"Z", kSeparators}, {"Separator", kSeparators},
        {"C", kOther}, {"Other", kOther},
    };
    for (auto [n, mask] : kNames) {
      if (name == n) return mask;
    }
    static const char* kCats[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
                                  "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
                                  "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
    for (unsigned i = 0; i < std::size(kCats); ++i) {
      if (name == kCats[i]) return 1u << i;
    }
    fail("unknown property \\p{" + name + "}");
  }

  // Parses what follows a backslash into cls (ranges or items).
  void parse_escape(SplitRegex::CharClass& cls) {
    const char32_t e = next();
    auto lit = [&](char32_t v) { cls.ranges.push_back({v, v}); };
    switch (e) {
      case 'n': return lit('\n');
      case 'r': return lit('\r');
      case 't': return lit('\t');
      case 'f': return lit('\f');
      case 'v': return lit('\v');
      case 'a': return lit('\a');
      case 'e': return lit(0x1B);
      case '0': return lit(0);
      case 'x':
        if (peek() == '{') { ++pos_; return lit(parse_hex(8, true)); }
        return lit(parse_hex(2, false));
      case 'u': return lit(parse_hex(4, false));
      case 's': cls.items.push_back({0, true, false}); return;
      case 'S': cls.items.push_back({0, true, true}); return;
      case 'd': cls.items.push_back({bit(Category::Nd), false, false}); return;
      case 'D': cls.items.push_back({bit(Category::Nd), false, true}); return;
      case 'w': case 'W': {
        cls.items.push_back({kLetters | kMarks | kNumbers | bit(Category::Pc), false, e == 'W'});
        return;
      }
      case 'p': case 'P': {
        bool negate = e == 'P';
        std::string name;
        if (peek() == '{') {
          ++pos_;
          if (peek() == '^') { ++pos_; negate = !negate; }
          while (!at_end() && peek() != '}') utf8::append(name, next());
          next();
        } else {
          utf8::append(name, next());
        }
        cls.items.push_back({parse_property_name(name), false, negate});
        return;
      }
      default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '1' && e <= '9'))
          fail("unsupported escape");
        return lit(e);
    }
  }

  SplitRegex::CharClass parse_class() {
    SplitRegex::CharClass cls;
    if (peek() == '^') { ++pos_; cls.negated = true; }
    bool first = true;
    while (true) {
      if (at_end()) fail("missing ']'");
      char32_t c = next();
      if (c == ']' && !first) break;
      first = false;
      if (c == '[') fail("nested classes are not supported");
      if (c == '\\') {
        SplitRegex::CharClass part;
        parse_escape(part);
        if (!part.items.empty()) {
          cls.items.insert(cls.items.end(), part.items.begin(), part.items.end());
          continue;
        }
        c = part.ranges[0].first;
      }
      char32_t hi = c;
      if (peek() == '-' && peek(1) != ']' && pos_ + 1 < cps_.size()) {
        ++pos_;
        hi = next();
        if (hi == '\\') {
          SplitRegex::CharClass part;
          parse_escape(part);
          if (part.ranges.empty()) fail("class range ends in a class escape");
          hi = part.ranges[0].first;
        }
        if (hi < c) fail("reversed class range");
      }
      cls.ranges.push_back({c, hi});
    }
    return cls;
  }

  int32_t here() const { return static_cast<int32_t>(re_.prog_.size()); }
  int32_t push(SplitRegex::Inst inst) {
    re_.prog_.push_back(inst);
    return here() - 1;
  }

  // Sub-programs (lookaround, atomic bodies) are emitted out of line after a
  // jump, each ending in Match, and referenced by their start.
  int32_t emit_sub(const Node& body) {
    const int32_t skip = push({SplitRegex::Op::Jump});
    const int32_t start = here();
    emit(body);
    push({SplitRegex::Op::Match});
    re_.prog_[skip].x = here();
    return start;
  }

  void emit(const Node& n) {
    using Op = SplitRegex::Op;
    if (re_.prog_.size() > 200000) fail("pattern too large");
    switch (n.kind) {
      case Node::Empty: return;
      case Node::Class: push({Op::Class, n.cls}); return;
      case Node::Begin: push({Op::Begin}); return;
      case Node::End: push({Op::End}); return;
      case Node::Concat:
        for (const auto& k : n.kids) emit(*k);
        return;
      case Node::Alt: {
        std::vector<int32_t> exits;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          if (i + 1 < n.kids.size()) {
            const int32_t split = push({Op::Split});
            re_.prog_[split].x = here();
            emit(*n.kids[i]);
            exits.push_back(push({Op::Jump}));
            re_.prog_[split].y = here();
          } else {
            emit(*n.kids[i]);
          }
        }
        for (int32_t j : exits) re_.prog_[j].x = here();
        return;
      }
      case Node::Look: case Node::NegLook: case Node::Atomic: {
        const int32_t start = emit_sub(*n.kids[0]);
        const Op op = n.kind == Node::Look ? Op::Look : n.kind == Node::NegLook ? Op::NegLook : Op::Atomic;
        push({op, start});
        return;
      }
      case Node::Repeat: {
        if (n.possessive) {
          Node copy;
          copy.kind = Node::Repeat;
          copy.min = n.min;
          copy.max = n.max;
          copy.kids.push_back(std::make_unique<Node>());
          clone_into(*n.kids[0], *copy.kids[0]);
          push({Op::Atomic, emit_sub(copy)});
          return;
        }
        for (int i = 0; i < n.min; ++i) emit(*n.kids[0]);
        if (n.max == -1) {
          const int32_t loop = push({Op::Split});
          const int32_t body = here();
          emit(*n.kids[0]);
          push({Op::Jump, loop});
          set_split(loop, body, here(), n.greedy);
        } else {
          std::vector<int32_t> splits;
          for (int i = n.min; i < n.max; ++i) {
            const int32_t s = push({Op::Split});
            splits.push_back(s);
            re_.prog_[s].x = here();
            emit(*n.kids[0]);
          }
          for (int32_t s : splits) set_split(s, s + 1, here(), n.greedy);
        }
        return;
      }
    }
  }

  void set_split(int32_t at, int32_t body, int32_t out, bool greedy) {
    re_.prog_[at].x = greedy ? body : out;
    re_.prog_[at].y = greedy ? out : body;
  }

  static void clone_into(const Node& from, Node& to) {
    to.kind = from.kind;
    to.cls = from.cls;
    to.min = from.min;
    to.max = from.max;
    to.greedy = from.greedy;
    to.possessive = from.possessive;
    for (const auto& k : from.kids) {
      to.kids.push_back(std::make_unique<Node>());
      clone_into(*k, *to.kids.back());
    }
  }

  SplitRegex& re_;
  std::vector<char32_t> cps_;
  size_t pos_ = 0;
  int depth_ = 0;
};

bool SplitRegex::CharClass::matches_slow(char32_t cp) const {
  bool in = false;
  for (auto [lo, hi] : ranges) {
    if (cp >= lo && cp <= hi) { in = true; break; }
  }
  if (!in) {
    for (const auto& item : items) {
      const bool hit = item.whitespace ? unicode::is_whitespace(cp)
                                       : (item.categories >> static_cast<unsigned>(unicode::category(cp))) & 1;
      if (hit != item.negate) { in = true; break; }
    }
  }
  return in != negated;
}

SplitRegex::SplitRegex(std::string_view pattern) : pattern_(pattern) {
  SplitRegexCompiler(*this, pattern).compile();
}

bool SplitRegex::run(std::span<const char32_t> text, int32_t pc, size_t pos, size_t& end, size_t& budget) const {
  // One stack per thread, shared by nested lookaround runs above `base`.
  thread_local std::vector<std::pair<int32_t, size_t>> stack;
  const size_t base = stack.size();
  while (true) {
    if (--budget == 0) throw TokenizerError("split regex '" + pattern_ + "' backtracks without bound");
    const Inst& in = prog_[pc];
    bool ok = true;
    switch (in.op) {
      case Op::Class:
        ok = pos < text.size() && classes_[in.x].matches(text[pos]);
        if (ok) { ++pos; ++pc; }
        break;
      case Op::Split:
        stack.push_back({in.y, pos});
        pc = in.x;
        break;
      case Op::Jump:
        pc = in.x;
        break;
      case Op::Match:
        end = pos;
        stack.resize(base);
        return true;
      case Op::Begin:
        ok = pos == 0;
        ++pc;
        break;
      case Op::End:
        ok = pos == text.size();
        ++pc;
        break;
      case Op::Look: case Op::NegLook: {
        size_t ignored;
        ok = run(text, in.x, pos, ignored, budget) == (in.op == Op::Look);
        ++pc;
        break;
      }
      case Op::Atomic: {
        size_t sub_end;
        ok = run(text, in.x, pos, sub_end, budget);
        pos = sub_end;
        ++pc;
        break;
      }
    }
    if (!ok) {
      if (stack.size() == base) return false;
      std::tie(pc, pos) = stack.back();
      stack.pop_back();
    }
  }
}

bool SplitRegex::find(std::span<const char32_t> text, size_t from, size_t& begin, size_t& end) const {
  // Generous for real patterns (a few steps per character) yet finite for
  // adversarial ones from a hostile tokenizer.json.
  size_t budget = 64 * (text.size() + 16) * (prog_.size() + 16);
  for (size_t start = from; start <= text.size(); ++start) {
    if (run(text, 0, start, end, budget)) {
      begin = start;
      return true;
    }
  }
  return false;
}

}  // namespace mnemo::engine
