// UTF-8 helpers shared by the tokenizer pieces.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mnemo::engine::utf8 {

// Decodes the code point at s[i], setting len to the bytes it spans. Invalid
// or truncated sequences decode as one byte with value 0xFFFD so callers
// always make progress.
char32_t decode(std::string_view s, size_t i, size_t& len);
void append(std::string& out, char32_t cp);
// Length of the sequence a lead byte announces (1 for continuation/invalid).
size_t sequence_length(unsigned char lead);
// Bytes at the end of s that form an incomplete (but so far valid) sequence.
size_t incomplete_tail(std::string_view s);
// Replaces invalid sequences with U+FFFD the way Rust's from_utf8_lossy does.
std::string lossy(std::string_view bytes);

}  // namespace mnemo::engine::utf8
