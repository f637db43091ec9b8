#include "engine/tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <vector>

#include "engine/tokenizer/utf8.h"

namespace mnemo::engine::unicode {

namespace {

Category lookup(char32_t cp) {
  const CategoryRange* begin = kCategoryRanges;
  const CategoryRange* end = kCategoryRanges + kCategoryRangeCount;
  const auto* it = std::upper_bound(begin, end, cp, [](char32_t c, const CategoryRange& r) { return c < r.lo; });
  if (it == begin) return Category::Cn;
  --it;
  return cp <= it->hi ? it->cat : Category::Cn;
}

// Latin-1 covers almost all text the split patterns see, so it skips the search.
const std::array<Category, 256>& latin1() {
  static const auto table = [] {
    std::array<Category, 256> t{};
    for (char32_t c = 0; c < 256; ++c) t[c] = lookup(c);
    return t;
  }();
  return table;
}

}  // namespace

Category category(char32_t cp) { return cp < 256 ? latin1()[cp] : lookup(cp); }

bool is_letter(char32_t cp) {
  const auto c = category(cp);
  return c >= Category::Lu && c <= Category::Lo;
}

bool is_number(char32_t cp) {
  const auto c = category(cp);
  return c >= Category::Nd && c <= Category::No;
}

bool is_mark(char32_t cp) {
  const auto c = category(cp);
  return c >= Category::Mn && c <= Category::Me;
}

bool is_punctuation(char32_t cp) {
  const auto c = category(cp);
  return c >= Category::Pc && c <= Category::Po;
}

bool is_whitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

namespace {

constexpr char32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161, kHangulT = 0x11A7;
constexpr char32_t kHangulLCount = 19, kHangulVCount = 21, kHangulTCount = 28;
constexpr char32_t kHangulNCount = kHangulVCount * kHangulTCount;
constexpr char32_t kHangulSCount = kHangulLCount * kHangulNCount;

uint8_t ccc(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCombiningClasses + kCombiningClassCount;
  const auto* it = std::lower_bound(kCombiningClasses, end, cp,
                                    [](const CombiningClass& c, char32_t v) { return c.cp < v; });
  return it != end && it->cp == cp ? it->ccc : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kHangulS && cp < kHangulS + kHangulSCount) {
    const char32_t s = cp - kHangulS;
    out.push_back(kHangulL + s / kHangulNCount);
    out.push_back(kHangulV + (s % kHangulNCount) / kHangulTCount);
    if (s % kHangulTCount) out.push_back(kHangulT + s % kHangulTCount);
    return;
  }
  const auto* end = kDecompositions + kDecompositionCount;
  const auto* it = std::lower_bound(kDecompositions, end, cp,
                                    [](const Decomposition& d, char32_t v) { return d.cp < v; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->first, out);
  if (it->second) decompose(it->second, out);
}

char32_t compose(char32_t a, char32_t b) {
  if (a >= kHangulL && a < kHangulL + kHangulLCount && b >= kHangulV && b < kHangulV + kHangulVCount)
    return kHangulS + ((a - kHangulL) * kHangulVCount + (b - kHangulV)) * kHangulTCount;
  if (a >= kHangulS && a < kHangulS + kHangulSCount && (a - kHangulS) % kHangulTCount == 0 &&
      b > kHangulT && b < kHangulT + kHangulTCount)
    return a + (b - kHangulT);
  const auto* end = kCompositions + kCompositionCount;
  const auto* it = std::lower_bound(kCompositions, end, std::pair{a, b}, [](const Composition& c, std::pair<char32_t, char32_t> v) {
    return c.first != v.first ? c.first < v.first : c.second < v.second;
  });
  return it != end && it->first == a && it->second == b ? it->composed : 0;
}

}  // namespace

// Full decomposition, canonical ordering and composition of one stretch.
static std::string nfc_slow(std::string_view text) {
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0, len = 0; i < text.size(); i += len) decompose(utf8::decode(text, i, len), cps);
  // Canonical ordering: stable sort each run of non-starters by class.
  for (size_t i = 0; i < cps.size();) {
    if (ccc(cps[i]) == 0) { ++i; continue; }
    size_t j = i;
    while (j < cps.size() && ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j, [](char32_t x, char32_t y) { return ccc(x) < ccc(y); });
    i = j;
  }
  // Canonical composition: each character joins the last starter unless a
  // character in between has the same or higher class (it is "blocked").
  std::vector<char32_t> out;
  out.reserve(cps.size());
  size_t starter = SIZE_MAX;
  uint8_t last_ccc = 0;
  for (char32_t cp : cps) {
    const uint8_t c = ccc(cp);
    if (starter != SIZE_MAX) {
      const bool blocked = out.size() - 1 != starter && (last_ccc == 0 || last_ccc >= c);
      if (!blocked) {
        if (char32_t composed = compose(out[starter], cp)) {
          out[starter] = composed;
          continue;
        }
      }
    }
    if (c == 0) {
      starter = out.size();
      last_ccc = 0;
    } else {
      last_ccc = c;
    }
    out.push_back(cp);
  }
  std::string result;
  result.reserve(text.size());
  for (char32_t cp : out) utf8::append(result, cp);
  return result;
}

std::string nfc(std::string_view text) {
  // Characters below U+0300 are starters that never compose with what
  // precedes them and are already NFC, so runs of them are copied; only the
  // last one of a run joins the stretch after it, which may hold marks it
  // composes with.
  auto fast = [&](size_t i, size_t& len) {
    if (static_cast<unsigned char>(text[i]) < 0x80) { len = 1; return true; }
    return utf8::decode(text, i, len) < 0x300;
  };
  std::string out;
  out.reserve(text.size());
  size_t i = 0, len = 0;
  while (i < text.size()) {
    size_t j = i, last = i;
    bool any = false;
    while (j < text.size() && fast(j, len)) { last = j; any = true; j += len; }
    if (j == text.size()) { out.append(text.substr(i)); break; }
    const size_t slow_start = any ? last : j;
    out.append(text.substr(i, slow_start - i));
    size_t k = j;
    while (k < text.size() && !fast(k, len)) k += len;
    out += nfc_slow(text.substr(slow_start, k - slow_start));
    i = k;
  }
  return out;
}

}  // namespace mnemo::engine::unicode
