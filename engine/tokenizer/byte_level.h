// The GPT-2 byte-to-unicode alphabet: each byte maps to one printable code
// point so byte-level BPE vocabularies are valid UTF-8 strings.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace mnemo::engine::byte_level {

// UTF-8 of the code point that stands for each byte.
const std::array<std::string, 256>& byte_to_chars();
// The byte a code point stands for, or -1 when it is outside the alphabet.
int char_to_byte(char32_t cp);
// Maps every byte of raw to its stand-in.
std::string encode(std::string_view raw);
// Inverse of encode; a token with any character outside the alphabet keeps
// its own UTF-8 bytes, as the HF ByteLevel decoder does.
void decode_token(std::string_view token, std::string& bytes_out);

}  // namespace mnemo::engine::byte_level
