// JSON text exactly as Python's json.dumps(ensure_ascii=False) writes it,
// which is what HF chat templates' `tojson` produces: ", " and ": "
// separators, or "," and newline-plus-indent when indent >= 0; keys in
// insertion order.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace mnemo::engine {

std::string python_json_dumps(const nlohmann::ordered_json& value, int indent = -1);

}  // namespace mnemo::engine
