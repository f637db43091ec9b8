#include "engine/constrain/schema_keywords.h"

#include <array>
#include <string_view>

#include "engine/constrain/grammar.h"

namespace mnemo::engine {

namespace {

using Json = nlohmann::ordered_json;

// Assertions the grammar cannot express: each would let through output
// that a validator rejects, so strict compilation refuses them. (format,
// contentEncoding and contentMediaType are annotations in JSON Schema
// 2020-12 and pass; the docs say so.)
constexpr std::array<std::string_view, 22> kRefused = {
    "pattern",          "patternProperties", "propertyNames",        "not",
    "if",               "then",              "else",                 "dependentRequired",
    "dependentSchemas", "dependencies",      "contains",             "minContains",
    "maxContains",      "prefixItems",       "additionalItems",      "multipleOf",
    "minProperties",    "maxProperties",     "unevaluatedItems",     "exclusiveMaximum",
    "exclusiveMinimum", "maximum",
};

// Keywords that only make sense beside $ref / anyOf when they restate
// nothing: annotations and definitions.
bool is_annotation(const std::string& key) {
  static constexpr std::array<std::string_view, 14> kAnnotations = {
      "description", "title",   "default",  "examples", "$schema",   "$id",       "$comment",
      "deprecated",  "readOnly", "writeOnly", "$defs",   "definitions", "format", "nullable"};
  for (const auto a : kAnnotations)
    if (key == a) return true;
  return key.starts_with("x-");
}

[[noreturn]] void refuse(const std::string& where, const std::string& what) {
  throw SchemaError(where, "'" + what + "' is not supported");
}

}  // namespace

void check_strict_keywords(const Json& s, const std::string& where) {
  for (const auto& [key, value] : s.items()) {
    for (const auto r : kRefused)
      if (key == r) refuse(where, key);
  }
  if (s.contains("minimum")) {
    // Zero is the one bound the number grammar keeps (no minus sign).
    const Json& m = s["minimum"];
    if (!m.is_number() || m.get<double>() != 0) throw SchemaError(where, "'minimum' other than 0 is not supported");
  }
  if (s.contains("uniqueItems") && s["uniqueItems"] == true) refuse(where, "uniqueItems: true");
  if (s.contains("unevaluatedProperties") && s["unevaluatedProperties"] != false)
    refuse(where, "unevaluatedProperties other than false");
  if (s.contains("items") && s["items"].is_array()) refuse(where, "items as an array (tuples)");
  if (s.contains("allOf") && !(s["allOf"].is_array() && s["allOf"].size() == 1)) refuse(where, "allOf with more than one schema");
  // Siblings of a $ref or an anyOf would have to hold as well; the compiler
  // takes only the reference or the alternatives.
  for (const char* combinator : {"$ref", "anyOf", "oneOf", "allOf"}) {
    if (!s.contains(combinator)) continue;
    for (const auto& [key, value] : s.items())
      if (key != combinator && !is_annotation(key) && !(key == "type" && std::string_view(combinator) != "$ref"))
        refuse(where, std::string(combinator) + "' beside '" + key);
  }
  if (s.contains("type")) {
    const Json& t = s["type"];
    auto known = [](const Json& x) {
      static constexpr std::array<std::string_view, 7> kTypes = {"string", "number", "integer", "boolean", "null", "array", "object"};
      if (!x.is_string()) return false;
      for (const auto k : kTypes)
        if (x.get_ref<const std::string&>() == k) return true;
      return false;
    };
    bool ok = known(t) || (t.is_array() && !t.empty());
    if (t.is_array())
      for (const auto& x : t) ok = ok && known(x);
    if (!ok) throw SchemaError(where + ".type", "must be one of string, number, integer, boolean, null, array, object (or a list of them)");
  }
}

}  // namespace mnemo::engine
