#include "engine/tokenizer/utf8.h"

namespace mnemo::engine::utf8 {

size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 1;
}

namespace {

// Valid range of the second byte, which carries the overlong/surrogate limits.
bool second_ok(unsigned char lead, unsigned char b) {
  if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
  if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
  if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  return b >= 0x80 && b <= 0xBF;
}

// Number of bytes of a valid prefix of the sequence starting at s[i].
size_t valid_prefix(std::string_view s, size_t i, size_t want) {
  const auto lead = static_cast<unsigned char>(s[i]);
  size_t n = 1;
  while (n < want && i + n < s.size()) {
    const auto b = static_cast<unsigned char>(s[i + n]);
    const bool ok = n == 1 ? second_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
    ++n;
  }
  return n;
}

}  // namespace

char32_t decode(std::string_view s, size_t i, size_t& len) {
  const auto lead = static_cast<unsigned char>(s[i]);
  len = 1;
  if (lead < 0x80) return lead;
  const size_t want = sequence_length(lead);
  if (want == 1) return 0xFFFD;
  if (valid_prefix(s, i, want) != want) return 0xFFFD;
  len = want;
  char32_t cp = lead & (0xFF >> (want + 1));
  for (size_t k = 1; k < want; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t incomplete_tail(std::string_view s) {
  // A sequence is at most 4 bytes, so only the last 3 can be an unfinished one.
  const size_t start = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = s.size(); i-- > start;) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x80 && b <= 0xBF) continue;
    const size_t want = sequence_length(b);
    const size_t have = s.size() - i;
    if (want > have && valid_prefix(s, i, want) == have) return have;
    return 0;
  }
  return 0;
}

std::string lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80) {
      out.push_back(bytes[i]);
      ++i;
      continue;
    }
    const size_t want = sequence_length(lead);
    const size_t got = want == 1 ? 0 : valid_prefix(bytes, i, want);
    if (got == want) {
      out.append(bytes.substr(i, want));
      i += want;
    } else {
      // Rust replaces each maximal invalid prefix with one U+FFFD.
      out.append("\xEF\xBF\xBD");
      i += got == 0 ? 1 : got;
    }
  }
  return out;
}

}  // namespace mnemo::engine::utf8
