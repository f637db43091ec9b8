#include "daemon/net/auth.h"

#include <cstddef>

#include "daemon/net/http_wire.h"

namespace mnemo::daemon::net {

bool constant_time_equal(std::string_view expected, std::string_view given) {
  // Walk all of `expected` whatever `given` holds; a length mismatch is folded into the
  // same accumulator instead of returning early.
  volatile unsigned char diff = expected.size() == given.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = given.empty() ? 0 : static_cast<unsigned char>(given[i % given.size()]);
    diff = diff | (static_cast<unsigned char>(expected[i]) ^ g);
  }
  return diff == 0;
}

bool bearer_matches(std::string_view authorization, std::string_view api_key) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() < scheme.size() ||
      !iequals(authorization.substr(0, scheme.size()), scheme))
    return false;
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return !api_key.empty() && constant_time_equal(api_key, token);
}

}  // namespace mnemo::daemon::net
