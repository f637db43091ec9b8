#include "engine/tokenizer/pre_tokenizer.h"

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/utf8.h"

namespace mnemo::engine {

namespace jf = json_fields;

namespace {

// GPT-2's split pattern, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Span {
  size_t begin, end;
  bool is_match;
};

// Byte spans of `text` alternating between gaps and matches, covering it.
std::vector<Span> regex_spans(const SplitRegex& re, const std::string& text) {
  std::vector<char32_t> cps;
  std::vector<size_t> offsets;
  cps.reserve(text.size());
  offsets.reserve(text.size() + 1);
  for (size_t i = 0, len = 0; i < text.size(); i += len) {
    cps.push_back(utf8::decode(text, i, len));
    offsets.push_back(i);
  }
  offsets.push_back(text.size());
  std::vector<Span> spans;
  size_t prev = 0, from = 0, b = 0, e = 0;
  while (from <= cps.size() && re.find(cps, from, b, e)) {
    if (b != prev) spans.push_back({offsets[prev], offsets[b], false});
    spans.push_back({offsets[b], offsets[e], true});
    prev = e;
    from = e > b ? e : e + 1;  // an empty match must not stall the scan
  }
  if (prev != cps.size()) spans.push_back({offsets[prev], text.size(), false});
  return spans;
}

std::vector<Span> literal_spans(const std::string& lit, const std::string& text) {
  std::vector<Span> spans;
  size_t prev = 0;
  if (!lit.empty()) {
    for (size_t at = text.find(lit); at != std::string::npos; at = text.find(lit, at + lit.size())) {
      if (at != prev) spans.push_back({prev, at, false});
      spans.push_back({at, at + lit.size(), true});
      prev = at + lit.size();
    }
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), false});
  return spans;
}

// Applies a delimiter behaviour the way HF's NormalizedString::split does;
// `spans` is modified in place to (range, remove) pairs.
void split_piece(const PreToken& piece, std::vector<Span> spans, PreTokenizer::Behavior behavior, bool invert,
                 std::vector<PreToken>& out) {
  using B = PreTokenizer::Behavior;
  if (invert) {
    for (auto& s : spans) s.is_match = !s.is_match;
  }
  std::vector<Span> merged;  // is_match now means "remove"
  bool previous_match = false;
  switch (behavior) {
    case B::Removed:
      merged = spans;
      break;
    case B::Isolated:
      merged = spans;
      for (auto& s : merged) s.is_match = false;
      break;
    case B::Contiguous:
      for (const auto& s : spans) {
        if (s.is_match == previous_match && !merged.empty()) merged.back().end = s.end;
        else merged.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      break;
    case B::MergedWithPrevious:
      for (const auto& s : spans) {
        if (s.is_match && !previous_match && !merged.empty()) merged.back().end = s.end;
        else merged.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      break;
    case B::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) merged.back().begin = it->begin;
        else merged.push_back({it->begin, it->end, false});
        previous_match = it->is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
  }
  for (const auto& s : merged) {
    if (s.is_match || s.begin == s.end) continue;
    out.push_back({piece.text.substr(s.begin, s.end - s.begin), piece.at_input_start && s.begin == 0});
  }
}

PreTokenizer::Behavior parse_behavior(const nlohmann::json& j, const std::string& where) {
  const std::string b = jf::string_or(j, "behavior", where);
  using B = PreTokenizer::Behavior;
  if (b == "Removed") return B::Removed;
  if (b == "Isolated") return B::Isolated;
  if (b == "MergedWithPrevious") return B::MergedWithPrevious;
  if (b == "MergedWithNext") return B::MergedWithNext;
  if (b == "Contiguous") return B::Contiguous;
  throw TokenizerError(where + ".behavior: unknown '" + b + "'");
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j, const std::string& where) {
  PreTokenizer p;
  if (!j.is_null()) p.add(j, where);
  return p;
}

void PreTokenizer::add(const nlohmann::json& j, const std::string& where) {
  const std::string type = jf::type_of(j, where);
  auto regex_split = [&](const char* pattern, Behavior behavior, bool invert) {
    steps_.push_back(Split{std::make_shared<const SplitRegex>(pattern), {}, behavior, invert});
  };
  if (type == "Sequence") {
    const auto& list = jf::array_of(j, "pretokenizers", where);
    for (size_t i = 0; i < list.size(); ++i) add(list[i], where + ".pretokenizers[" + std::to_string(i) + "]");
  } else if (type == "Split") {
    const auto p = jf::pattern(j, "pattern", where);
    Split s{nullptr, {}, parse_behavior(j, where), jf::bool_or(j, "invert", where, false)};
    if (p.regex) s.regex = std::make_shared<const SplitRegex>(p.text);
    else s.literal = p.text;
    steps_.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    ByteLevel b{jf::bool_or(j, "add_prefix_space", where, true), nullptr};
    if (jf::bool_or(j, "use_regex", where, true)) b.regex = std::make_shared<const SplitRegex>(kGpt2Pattern);
    steps_.push_back(std::move(b));
  } else if (type == "Metaspace") {
    Metaspace m{jf::string_or(j, "replacement", where, "\xE2\x96\x81"), Metaspace::Always, jf::bool_or(j, "split", where, true)};
    if (j.contains("prepend_scheme")) {
      const std::string scheme = jf::string_or(j, "prepend_scheme", where);
      if (scheme == "first") m.prepend = Metaspace::First;
      else if (scheme == "never") m.prepend = Metaspace::Never;
      else if (scheme != "always") throw TokenizerError(where + ".prepend_scheme: unknown '" + scheme + "'");
    } else if (!jf::bool_or(j, "add_prefix_space", where, true)) {
      m.prepend = Metaspace::Never;
    }
    if (m.replacement.empty()) throw TokenizerError(where + ".replacement: must not be empty");
    steps_.push_back(std::move(m));
  } else if (type == "Digits") {
    const bool individual = jf::bool_or(j, "individual_digits", where, false);
    regex_split("[0-9]", individual ? Behavior::Isolated : Behavior::Contiguous, false);
  } else if (type == "Whitespace") {
    regex_split(R"(\w+|[^\w\s]+)", Behavior::Removed, true);
  } else if (type == "WhitespaceSplit") {
    regex_split(R"(\s+)", Behavior::Removed, false);
  } else {
    throw TokenizerError(where + ".type: unsupported pre_tokenizer '" + type + "'");
  }
}

void PreTokenizer::apply(std::vector<PreToken>& pieces) const {
  std::vector<PreToken> next;
  for (const auto& step : steps_) {
    next.clear();
    for (auto& piece : pieces) {
      if (const auto* s = std::get_if<Split>(&step)) {
        auto spans = s->regex ? regex_spans(*s->regex, piece.text) : literal_spans(s->literal, piece.text);
        split_piece(piece, std::move(spans), s->behavior, s->invert, next);
      } else if (const auto* b = std::get_if<ByteLevel>(&step)) {
        std::string text = std::move(piece.text);
        if (b->add_prefix_space && !text.starts_with(" ")) text = " " + text;
        std::vector<PreToken> parts;
        PreToken whole{std::move(text), piece.at_input_start};
        if (b->regex) split_piece(whole, regex_spans(*b->regex, whole.text), Behavior::Isolated, false, parts);
        else parts.push_back(std::move(whole));
        for (auto& p : parts) next.push_back({byte_level::encode(p.text), p.at_input_start});
      } else if (const auto* m = std::get_if<Metaspace>(&step)) {
        std::string text;
        for (char c : piece.text) {
          if (c == ' ') text += m->replacement;
          else text.push_back(c);
        }
        const bool prepend = m->prepend == Metaspace::Always || (m->prepend == Metaspace::First && piece.at_input_start);
        if (prepend && !text.starts_with(m->replacement)) text = m->replacement + text;
        PreToken whole{std::move(text), piece.at_input_start};
        if (m->split) split_piece(whole, literal_spans(m->replacement, whole.text), Behavior::MergedWithNext, false, next);
        else next.push_back(std::move(whole));
      }
    }
    pieces.swap(next);
  }
}

}  // namespace mnemo::engine
