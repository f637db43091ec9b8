#pragma once

#include <string_view>

namespace mnemo::daemon::net {

// Equality whose running time depends only on `expected`'s length, not on where the
// strings differ, so a client cannot guess a key byte by byte from response times.
bool constant_time_equal(std::string_view expected, std::string_view given);

// Whether an Authorization header value is "Bearer <api_key>" (scheme in any case).
bool bearer_matches(std::string_view authorization, std::string_view api_key);

}  // namespace mnemo::daemon::net
