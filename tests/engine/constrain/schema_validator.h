// An independent check of a JSON value against the schema subset that
// engine/constrain supports, with the same reading of it: listed
// properties only (when "properties" is given), lengths in code points.
// Used to judge what constrained generation produced.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace mnemo::engine::testing {

// "" when the value is valid, else what is wrong and where. Local $ref
// resolve against root (the schema itself when null).
std::string validate(const nlohmann::ordered_json& value, const nlohmann::ordered_json& schema,
                     const std::string& where = "$", const nlohmann::ordered_json* root = nullptr);

}  // namespace mnemo::engine::testing
