#include "engine/constrain/token_trie.h"

#include <algorithm>
#include <optional>

namespace mnemo::engine {

namespace {

// Code points in s when it is plain (see TokenTrie::Plain), else nullopt.
std::optional<uint32_t> plain_chars(const std::string& s) {
  if (s.find("</") != std::string::npos) return std::nullopt;
  uint32_t chars = 0;
  for (size_t i = 0; i < s.size(); ++chars) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == '"' || c == '\\') return std::nullopt;
      ++i;
      continue;
    }
    size_t more = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) more = 1;
    else if (c == 0xE0) more = 2, lo = 0xA0;
    else if (c == 0xED) more = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) more = 2;
    else if (c == 0xF0) more = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) more = 3;
    else if (c == 0xF4) more = 3, hi = 0x8F;
    else return std::nullopt;
    if (i + more >= s.size()) return std::nullopt;  // a character cut off
    for (size_t k = 1; k <= more; ++k) {
      const auto d = static_cast<uint8_t>(s[i + k]);
      if (d < lo || d > hi) return std::nullopt;
      lo = 0x80, hi = 0xBF;
    }
    i += more + 1;
  }
  return chars;
}

TokenTrie::Trie build_trie(const std::vector<std::string>& bytes, std::vector<int32_t> ids) {
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return bytes[static_cast<size_t>(a)] < bytes[static_cast<size_t>(b)] || (bytes[static_cast<size_t>(a)] == bytes[static_cast<size_t>(b)] && a < b);
  });
  TokenTrie::Trie t;
  t.nodes.push_back({0, 0, 0, 0, 0});
  std::vector<uint32_t> path = {0};  // node at each depth of the current token
  const std::string* prev = nullptr;
  for (const int32_t id : ids) {
    const std::string& s = bytes[static_cast<size_t>(id)];
    size_t common = 0;
    if (prev)
      while (common < prev->size() && common < s.size() && (*prev)[common] == s[common]) ++common;
    while (path.size() > common + 1) {
      t.nodes[path.back()].end = static_cast<uint32_t>(t.nodes.size());
      path.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      const auto at = static_cast<uint32_t>(t.ids.size());
      t.nodes.push_back({0, at, at, static_cast<uint16_t>(d + 1), static_cast<uint8_t>(s[d])});
      path.push_back(static_cast<uint32_t>(t.nodes.size() - 1));
    }
    // Equal byte strings are adjacent, so a node's ids stay contiguous.
    TokenTrie::Node& n = t.nodes[path.back()];
    if (n.tokens_end != t.ids.size()) n.tokens_begin = n.tokens_end = static_cast<uint32_t>(t.ids.size());
    t.ids.push_back(id);
    ++n.tokens_end;
    t.max_depth = std::max<uint16_t>(t.max_depth, static_cast<uint16_t>(s.size()));
    prev = &s;
  }
  for (const uint32_t n : path) t.nodes[n].end = static_cast<uint32_t>(t.nodes.size());
  return t;
}

}  // namespace

std::shared_ptr<const TokenTrie> TokenTrie::build(const Tokenizer& tokenizer) {
  auto t = std::make_shared<TokenTrie>();
  const int32_t n = tokenizer.vocab_size();
  t->bytes_.resize(static_cast<size_t>(n));
  std::vector<int32_t> all, rest;
  for (int32_t id = 0; id < n; ++id) {
    if (tokenizer.is_added(id)) continue;
    std::string b = tokenizer.token_bytes(id);
    if (b.empty() || b.size() > UINT16_MAX) continue;
    all.push_back(id);
    if (auto chars = plain_chars(b)) t->plain_.push_back({id, *chars, b[0] == '/'});
    else rest.push_back(id);
    t->bytes_[static_cast<size_t>(id)] = std::move(b);
  }
  std::stable_sort(t->plain_.begin(), t->plain_.end(), [](const Plain& a, const Plain& b) { return a.chars < b.chars; });
  t->all_ = build_trie(t->bytes_, std::move(all));
  t->non_plain_ = build_trie(t->bytes_, std::move(rest));
  return t;
}

}  // namespace mnemo::engine
