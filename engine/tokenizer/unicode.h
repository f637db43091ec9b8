// Unicode properties and NFC, as far as tokenizer.json files use them.
#pragma once

#include <string>
#include <string_view>

#include "engine/tokenizer/unicode_tables.h"

namespace mnemo::engine::unicode {

Category category(char32_t cp);
bool is_letter(char32_t cp);       // \p{L}
bool is_number(char32_t cp);       // \p{N}
bool is_mark(char32_t cp);         // \p{M}
bool is_whitespace(char32_t cp);   // \s: the White_Space property, as Oniguruma's \s
bool is_punctuation(char32_t cp);  // \p{P}

// Canonical composition (NFC) of UTF-8 text; invalid UTF-8 bytes pass through.
std::string nfc(std::string_view utf8);

}  // namespace mnemo::engine::unicode
