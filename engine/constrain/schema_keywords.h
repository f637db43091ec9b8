// Which JSON-schema keywords the schema compiler honours, which it may
// ignore, and which change what is valid in a way the grammar cannot
// follow. Strict compilation (structured outputs) refuses the last kind
// with the keyword's path rather than produce output the client's
// validator would reject.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace mnemo::engine {

// Throws SchemaError (grammar.h) at `where` for a keyword of `schema` (an
// object) that strict compilation cannot honour. Keywords it does not
// know are annotations by JSON Schema's rules and pass.
void check_strict_keywords(const nlohmann::ordered_json& schema, const std::string& where);

}  // namespace mnemo::engine
