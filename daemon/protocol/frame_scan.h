#pragma once
// A pass over a frame before the JSON parser sees it: nesting depth counted
// outside strings. A document nested deeper than the protocol allows is
// refused before anything recursive (copies, dumps, comparisons) can touch
// it. Internal to mnemo_protocol.
#include <string_view>

namespace mnemo::daemon::protocol::detail {

// The deepest nesting of [ and { outside string literals; stops counting
// (and returns limit + 1) once past `limit`.
int nesting_depth(std::string_view text, int limit);

}  // namespace mnemo::daemon::protocol::detail
