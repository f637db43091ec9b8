#include "engine/tokenizer/added_vocab.h"

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/utf8.h"

namespace mnemo::engine {

namespace jf = json_fields;

void AddedVocab::Trie::insert(std::string_view s, int32_t token) {
  if (s.empty()) return;
  first_byte[static_cast<unsigned char>(s[0])] = true;
  int32_t node = 0;
  for (unsigned char c : s) {
    auto it = nodes[node].next.find(c);
    if (it == nodes[node].next.end()) {
      nodes.emplace_back();
      it = nodes[node].next.emplace(c, static_cast<int32_t>(nodes.size() - 1)).first;
    }
    node = it->second;
  }
  if (nodes[node].token < 0) nodes[node].token = token;  // first listed wins on duplicates
}

int32_t AddedVocab::Trie::longest(std::string_view text, size_t pos, size_t& len) const {
  if (!first_byte[static_cast<unsigned char>(text[pos])]) return -1;
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = nodes[node].next.find(static_cast<unsigned char>(text[i]));
    if (it == nodes[node].next.end()) break;
    node = it->second;
    if (nodes[node].token >= 0) {
      best = nodes[node].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

AddedVocab::AddedVocab(const nlohmann::json& list, const std::string& where) {
  if (list.is_null()) return;
  if (!list.is_array()) throw TokenizerError(where + ": must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const auto& t = list[i];
    const auto id = jf::int_or(t, "id", at, -1);
    if (id < 0 || id > (1 << 21)) throw TokenizerError(at + ".id: missing or out of range");
    jf::require(t, "content", at);
    AddedToken tok{static_cast<int32_t>(id), jf::string_or(t, "content", at),
                   jf::bool_or(t, "single_word", at, false), jf::bool_or(t, "lstrip", at, false),
                   jf::bool_or(t, "rstrip", at, false), jf::bool_or(t, "normalized", at, true),
                   jf::bool_or(t, "special", at, false)};
    if (tok.content.empty()) throw TokenizerError(at + ".content: must not be empty");
    by_id_[tok.id] = tokens_.size();
    by_content_.emplace(tok.content, tokens_.size());
    tokens_.push_back(std::move(tok));
  }
  std::vector<std::string> forms;
  for (const auto& t : tokens_) forms.push_back(t.content);
  build(raw_, false, forms);
  build(normalized_, true, forms);
}

void AddedVocab::build(Trie& trie, bool normalized, const std::vector<std::string>& forms) {
  trie = Trie{};
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].normalized == normalized) trie.insert(forms[i], static_cast<int32_t>(i));
  }
}

void AddedVocab::set_normalized_forms(const std::vector<std::string>& forms) { build(normalized_, true, forms); }

const AddedToken* AddedVocab::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocab::by_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

namespace {

bool is_word_char(char32_t c) { return c == '_' || unicode::is_letter(c) || unicode::is_number(c); }

char32_t last_char(std::string_view s) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  size_t len;
  return utf8::decode(s, start, len);
}

}  // namespace

std::vector<AddedVocab::Segment> AddedVocab::split(std::string_view text, bool normalized_set, bool match_special,
                                                   std::string_view shadow) const {
  const Trie& trie = normalized_set ? normalized_ : raw_;
  std::vector<Segment> out;
  if (trie.nodes.size() == 1 || text.empty()) {
    if (!text.empty()) out.push_back({std::nullopt, text});
    return out;
  }
  size_t start_offset = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t len = 0;
    const int32_t t = trie.longest(text, pos, len);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[t];
    size_t start = pos, stop = pos + len;
    pos = stop;
    if (tok.special && !match_special) continue;
    if (tok.special && !shadow.empty() && shadow.substr(start, len) != text.substr(start, len)) continue;
    if (tok.single_word) {
      size_t clen;
      const bool start_ok = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      const bool stop_ok = stop == text.size() || !is_word_char(utf8::decode(text, stop, clen));
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        size_t p = s - 1;
        while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
        size_t clen;
        if (!unicode::is_whitespace(utf8::decode(text, p, clen))) break;
        s = p;
      }
      start = s;
    }
    if (tok.rstrip) {
      size_t clen;
      while (stop < text.size() && unicode::is_whitespace(utf8::decode(text, stop, clen))) stop += clen;
      pos = stop;
    }
    if (start > start_offset) out.push_back({std::nullopt, text.substr(start_offset, start - start_offset)});
    out.push_back({tok.id, text.substr(start, stop - start)});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({std::nullopt, text.substr(start_offset)});
  return out;
}

}  // namespace mnemo::engine
