#include "engine/tokenizer/byte_level.h"

#include "engine/tokenizer/utf8.h"

namespace mnemo::engine::byte_level {

namespace {

// Printable Latin-1 bytes stand for themselves; the rest are moved to 256+
// in byte order, which is how GPT-2 defined the alphabet.
std::array<char32_t, 256> build_map() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

const std::array<char32_t, 256>& code_points() {
  static const auto map = build_map();
  return map;
}

}  // namespace

const std::array<std::string, 256>& byte_to_chars() {
  static const auto table = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b) utf8::append(t[b], code_points()[b]);
    return t;
  }();
  return table;
}

int char_to_byte(char32_t cp) {
  static const auto inverse = [] {
    std::array<int16_t, 324> inv;
    inv.fill(-1);
    for (int b = 0; b < 256; ++b) inv[code_points()[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

std::string encode(std::string_view raw) {
  const auto& table = byte_to_chars();
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) out += table[b];
  return out;
}

void decode_token(std::string_view token, std::string& bytes_out) {
  const size_t mark = bytes_out.size();
  for (size_t i = 0, len = 0; i < token.size(); i += len) {
    const int b = char_to_byte(utf8::decode(token, i, len));
    if (b < 0) {
      bytes_out.resize(mark);
      bytes_out.append(token);
      return;
    }
    bytes_out.push_back(static_cast<char>(b));
  }
}

}  // namespace mnemo::engine::byte_level
