// Random walks through the recogniser: from the start state, repeatedly
// take a random byte it allows until the text is complete; the result must
// be JSON that validates against the schema, and the walk must never get
// stuck (no allowed byte while incomplete).
#include <gtest/gtest.h>

#include <random>

#include "engine/constrain/recognizer.h"
#include "schema_validator.h"

namespace mnemo::engine {
namespace {

using Json = nlohmann::ordered_json;

const char* const kSchemas[] = {
    R"({"type": "object", "properties": {"location": {"type": "string", "maxLength": 12},
        "unit": {"enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer", "minimum": 0}},
        "required": ["location"]})",
    R"({"type": "object", "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 8},
        "filters": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string", "maxLength": 4},
        "value": {"type": ["number", "null"]}}, "required": ["field", "value"]}, "maxItems": 3},
        "strict": {"type": "boolean"}}, "required": ["query", "strict"]})",
    R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4})",
    R"({"enum": ["a", "ab", 1, 12, 1.5, null, false, {"x": [1, 2]}]})",
    R"({"type": "object", "properties": {"meta": {"type": "object"}, "tags": {"type": "array"},
        "id": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 5}]}}, "required": ["id"]})",
    R"({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "object",
        "properties": {"c": {"const": "deep"}}, "required": ["c"]}}, "required": ["b"]}, "n": {"type": "number"}}})",
    R"({})",
    R"({"type": "string", "maxLength": 6})",
    R"({"type": "object", "properties": {}})",
    R"({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}})",
    R"({"type": "object", "properties": {"x": {"type": "null"}, "y": {"type": "string", "nullable": true, "maxLength": 3}}})",
};

// A seeded walk; structural bytes are favoured so strings and numbers end
// before their limits most of the time.
std::string walk(const Grammar& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Recognizer r(g);
  std::string out;
  for (int steps = 0; steps < 100000; ++steps) {
    std::vector<uint8_t> allowed;
    for (int b = 0; b < 256; ++b) {
      Recognizer copy(r);
      if (copy.feed(static_cast<uint8_t>(b))) allowed.push_back(static_cast<uint8_t>(b));
    }
    if (allowed.empty()) {
      EXPECT_TRUE(r.complete()) << "stuck after " << out;
      return out;
    }
    if (r.complete() && rng() % 3 == 0) return out;
    std::vector<uint8_t> structural;
    for (uint8_t b : allowed)
      if (std::string_view("\"]},").find(static_cast<char>(b)) != std::string_view::npos) structural.push_back(b);
    const auto& pool = !structural.empty() && rng() % 4 == 0 ? structural : allowed;
    const uint8_t b = pool[rng() % pool.size()];
    EXPECT_TRUE(r.feed(b));
    out.push_back(static_cast<char>(b));
  }
  ADD_FAILURE() << "walk did not end";
  return out;
}

TEST(RandomWalk, EveryCompletedTextParsesAndValidates) {
  for (const char* text : kSchemas) {
    const Json schema = Json::parse(text);
    Grammar g;
    g.set_root(g.add_schema(schema));
    for (uint64_t seed = 0; seed < 60; ++seed) {
      const std::string out = walk(g, seed * 7919 + 1);
      const Json value = Json::parse(out, nullptr, false);
      ASSERT_FALSE(value.is_discarded()) << "not JSON: " << out << "\nschema " << text;
      EXPECT_EQ(testing::validate(value, schema), "") << out << "\nschema " << text;
    }
  }
}

TEST(RandomWalk, PropertiesComeInSchemaOrder) {
  const Json schema = Json::parse(kSchemas[1]);
  Grammar g;
  g.set_root(g.add_schema(schema));
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const Json value = Json::parse(walk(g, seed));
    std::vector<std::string> keys, order;
    for (const auto& [k, v] : value.items()) keys.push_back(k);
    for (const auto& [k, v] : schema["properties"].items())
      if (value.contains(k)) order.push_back(k);
    EXPECT_EQ(keys, order);
  }
}

}  // namespace
}  // namespace mnemo::engine
