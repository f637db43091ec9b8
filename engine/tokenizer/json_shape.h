#pragma once
// One pass over JSON text, before any parser sees it: how deep it nests and
// how many elements it holds, counted outside string literals. Whatever
// walks a parsed document recursively (copies, dumps, comparisons, template
// rendering) is safe once the depth is known to be small. Header-only so the
// daemon's JSON intake and the engine's parsers of JSON-in-strings (tool-call
// arguments, model output) share it without a link dependency.
#include <cstddef>
#include <string_view>

namespace mnemo::engine {

struct JsonShape {
  int depth = 0;         // deepest nesting of [ and {
  size_t elements = 0;   // containers opened plus separators: about the number of values
};

// Stops counting once past either limit, returning limit + 1 for it.
inline JsonShape json_shape(std::string_view text, int depth_limit, size_t element_limit) {
  JsonShape s;
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++s.elements;
      if (++depth > s.depth) s.depth = depth;
      if (s.depth > depth_limit) {
        s.depth = depth_limit + 1;
        return s;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == ',') {
      ++s.elements;
    }
    if (s.elements > element_limit) {
      s.elements = element_limit + 1;
      return s;
    }
  }
  return s;
}

// The depth a JSON text may have before the engine parses it from a string
// (call arguments in a conversation, a call in generated text): far deeper
// than any real tool call, far shallower than a stack can take.
inline constexpr int kMaxEmbeddedJsonDepth = 64;

inline bool json_nesting_within(std::string_view text, int limit) {
  return json_shape(text, limit, size_t(-1) - 1).depth <= limit;
}

}  // namespace mnemo::engine
