#pragma once
// The protocol's JSON type. Ordered, because tool parameter schemas are
// rendered into prompts with their keys in the client's order, and because
// echoed metadata should read back as it was sent.
#include <nlohmann/json.hpp>

namespace mnemo::daemon::protocol {

using Json = nlohmann::ordered_json;

}  // namespace mnemo::daemon::protocol
