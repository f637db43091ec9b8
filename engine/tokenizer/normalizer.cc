#include "engine/tokenizer/normalizer.h"

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/utf8.h"

namespace mnemo::engine {

namespace jf = json_fields;

Normalizer Normalizer::from_json(const nlohmann::json& j, const std::string& where) {
  Normalizer n;
  if (!j.is_null()) n.add(j, where);
  return n;
}

void Normalizer::add(const nlohmann::json& j, const std::string& where) {
  const std::string type = jf::type_of(j, where);
  if (type == "Sequence") {
    const auto& list = jf::array_of(j, "normalizers", where);
    for (size_t i = 0; i < list.size(); ++i) add(list[i], where + ".normalizers[" + std::to_string(i) + "]");
  } else if (type == "NFC") {
    steps_.push_back(Nfc{});
  } else if (type == "Lowercase") {
    steps_.push_back(Lowercase{});
  } else if (type == "Prepend") {
    jf::require(j, "prepend", where);
    steps_.push_back(Prepend{jf::string_or(j, "prepend", where)});
  } else if (type == "Replace") {
    const auto p = jf::pattern(j, "pattern", where);
    if (p.regex) throw TokenizerError(where + ".pattern: Regex replace is not supported");
    if (p.text.empty()) throw TokenizerError(where + ".pattern: must not be empty");
    steps_.push_back(Replace{p.text, jf::string_or(j, "content", where)});
  } else if (type == "Strip") {
    steps_.push_back(Strip{jf::bool_or(j, "strip_left", where, true), jf::bool_or(j, "strip_right", where, true)});
  } else {
    throw TokenizerError(where + ".type: unsupported normalizer '" + type + "'");
  }
}

namespace {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  size_t i = 0;
  while (true) {
    const size_t at = s.find(from, i);
    if (at == std::string::npos) break;
    out.append(s, i, at - i);
    out += to;
    i = at + from.size();
  }
  out.append(s, i);
  return out;
}

std::string ascii_lower(const std::string& s) {
  // Full Unicode lowercasing is not needed by the supported models; ASCII
  // is lowered and the rest passes through.
  std::string out = s;
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

std::string strip(const std::string& s, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e) {
      size_t len;
      if (!unicode::is_whitespace(utf8::decode(s, b, len))) break;
      b += len;
    }
  }
  if (right) {
    while (e > b) {
      size_t start = e - 1;
      while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      size_t len;
      if (!unicode::is_whitespace(utf8::decode(s, start, len))) break;
      e = start;
    }
  }
  return s.substr(b, e - b);
}

}  // namespace

std::string Normalizer::apply(std::string text) const {
  for (const auto& step : steps_) {
    if (const auto* r = std::get_if<Replace>(&step)) {
      text = replace_all(text, r->from, r->to);
    } else if (const auto* p = std::get_if<Prepend>(&step)) {
      if (!text.empty()) text = p->text + text;  // HF leaves empty pieces alone
    } else if (std::holds_alternative<Nfc>(step)) {
      text = unicode::nfc(text);
    } else if (std::holds_alternative<Lowercase>(step)) {
      text = ascii_lower(text);
    } else if (const auto* s = std::get_if<Strip>(&step)) {
      text = strip(text, s->left, s->right);
    }
  }
  return text;
}

}  // namespace mnemo::engine
