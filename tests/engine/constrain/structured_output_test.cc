// Strict schema compilation for structured outputs (response_format): the
// features real client schemas use ($defs/$ref, anyOf, enums, nullable,
// lengths, nested arrays) accept what validates and reject what does not;
// the keywords the grammar cannot follow are refused with their JSON path;
// json_object mode takes any object and nothing else.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "engine/constrain/json_output_constraint.h"
#include "engine/constrain/recognizer.h"
#include "schema_validator.h"

namespace mnemo::engine {
namespace {

using Json = nlohmann::ordered_json;

enum Verdict { kComplete, kPrefix, kReject };

Verdict judge(const Grammar& g, std::string_view text) {
  Recognizer r(g);
  for (const char c : text)
    if (!r.feed(static_cast<uint8_t>(c))) return kReject;
  return r.complete() ? kComplete : kPrefix;
}

std::shared_ptr<const Grammar> strict(const Json& schema) {
  return compile_json_output(&schema, SchemaOptions{.path = "response_format.json_schema.schema", .strict = true});
}

// What an OpenAI strict-mode client sends: every property required,
// additionalProperties false, optional fields as ["T", "null"], shared
// definitions under $defs.
const char* const kPerson = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 8},
    "role": {"type": "string", "enum": ["admin", "user"]},
    "age": {"type": ["integer", "null"]},
    "home": {"$ref": "#/$defs/address"},
    "past": {"type": "array", "items": {"$ref": "#/$defs/address"}, "maxItems": 2},
    "contact": {"anyOf": [{"$ref": "#/definitions/email"}, {"type": "null"}]},
    "grid": {"type": "array", "minItems": 1, "maxItems": 2,
             "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}},
    "version": {"const": 2}
  },
  "required": ["name", "role", "age", "home", "past", "contact", "grid", "version"],
  "additionalProperties": false,
  "$defs": {"address": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 6}},
                        "required": ["city"], "additionalProperties": false}},
  "definitions": {"email": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"],
                            "additionalProperties": false}}
})";

TEST(StructuredOutput, StrictSchemaAcceptsValidAndRejectsInvalid) {
  const Json schema = Json::parse(kPerson);
  const auto g = strict(schema);
  const std::string head = R"({"name": "Ann", "role": "admin", "age": )";
  const std::string tail = R"(, "home": {"city": "Oslo"}, "past": [], "contact": null, "grid": [[1, 2.5]], "version": 2})";
  const struct {
    std::string text;
    Verdict expect;
  } cases[] = {
      {head + "30" + tail, kComplete},
      {head + "null" + tail, kComplete},
      {R"({"name": "Ann", "role": "user", "age": 1, "home": {"city": "Rome"}, "past": [{"city": "a"}, {"city": "b"}],
          "contact": {"email": "a@b"}, "grid": [[1, 2], [3, 4]], "version": 2})",
       kReject},  // the newline is whitespace the grammar does not allow
      {R"({"name": "Ann", "role": "user", "age": 1, "home": {"city": "Rome"}, "past": [{"city": "a"}, {"city": "b"}], "contact": {"email": "a@b"}, "grid": [[1, 2], [3, 4]], "version": 2})",
       kComplete},
      {head + "30" + tail.substr(0, tail.size() - 1), kPrefix},
      {R"({"name": "", )", kReject},                 // minLength 1
      {R"({"name": "Annabelle", )", kReject},        // maxLength 8
      {R"({"name": "Ann", "role": "root")", kReject},  // enum
      {R"({"name": "Ann", "age": 1)", kReject},      // role is required and comes first
      {head + "1.5", kReject},                       // integer
      {head + R"("1")", kReject},                    // ["integer", "null"]
      {head + R"(1, "home": {"city": "Oslo", "zip": 1})", kReject},  // additionalProperties false in $defs
      {head + R"(1, "home": {"city": "Oslo"}, "past": [{}, )", kReject},
      {head + R"(1, "home": {"city": "Oslo"}, "past": [{"city": "a"}, {"city": "b"}, )", kReject},  // maxItems 2
      {head + R"(1, "home": {"city": "Oslo"}, "past": [], "contact": {"phone": 1})", kReject},
      {head + R"(1, "home": {"city": "Oslo"}, "past": [], "contact": null, "grid": [])", kReject},       // minItems 1
      {head + R"(1, "home": {"city": "Oslo"}, "past": [], "contact": null, "grid": [[1]])", kReject},    // inner minItems 2
      {head + R"(1, "home": {"city": "Oslo"}, "past": [], "contact": null, "grid": [[1, 2, 3)", kReject},  // inner maxItems 2
      {head + R"(1, "home": {"city": "Oslo"}, "past": [], "contact": null, "grid": [[1, 2]], "version": 3)", kReject},
      {head + "30" + tail + " ", kReject},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(judge(*g, c.text), c.expect) << c.text;
    if (c.expect == kComplete) { EXPECT_EQ(testing::validate(Json::parse(c.text), schema), "") << c.text; }
  }
}

TEST(StructuredOutput, ReferencesToTheRootAndNestedDefinitions) {
  // A definition that refers to another; "#" itself is the root (used here
  // non-recursively, through allOf's one schema).
  const Json schema = Json::parse(R"({"type": "object", "properties": {"p": {"$ref": "#/$defs/pair"}}, "required": ["p"],
      "$defs": {"pair": {"type": "array", "items": {"$ref": "#/$defs/bit"}, "minItems": 2, "maxItems": 2},
                "bit": {"enum": [0, 1]}}})");
  const auto g = strict(schema);
  EXPECT_EQ(judge(*g, R"({"p": [0, 1]})"), kComplete);
  EXPECT_EQ(judge(*g, R"({"p": [0, 2]})"), kReject);
  EXPECT_EQ(judge(*g, R"({"p": [0]})"), kReject);
  // JSON-pointer escapes in a definition's name.
  const Json escaped = Json::parse(R"({"$ref": "#/$defs/a~1b", "$defs": {"a/b": {"type": "boolean"}}})");
  EXPECT_EQ(judge(*strict(escaped), "true"), kComplete);
}

TEST(StructuredOutput, TypeBesideAnyOfAppliesToUntypedAlternatives) {
  const Json schema = Json::parse(R"({"type": "string", "anyOf": [{"maxLength": 2}, {"const": 5}]})");
  const auto g = strict(schema);
  EXPECT_EQ(judge(*g, R"("ab")"), kComplete);
  EXPECT_EQ(judge(*g, R"("abc")"), kReject);
  EXPECT_EQ(judge(*g, "5"), kComplete);
  EXPECT_EQ(judge(*g, "[1]"), kReject);  // not "any value"
}

TEST(StructuredOutput, AnnotationsAreIgnored) {
  const Json schema = Json::parse(R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "T",
      "description": "d", "type": "object", "properties": {"when": {"type": "string", "format": "date-time",
      "description": "x", "default": "now", "examples": ["now"]}}, "required": ["when"],
      "additionalProperties": false, "x-vendor": 1, "deprecated": false})");
  EXPECT_EQ(judge(*strict(schema), R"({"when": "t"})"), kComplete);
}

void expect_refused(const char* schema_text, const std::string& path, const std::string& words) {
  const Json schema = Json::parse(schema_text);
  try {
    strict(schema);
    ADD_FAILURE() << "accepted " << schema_text;
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.path(), path) << schema_text;
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(StructuredOutput, UnsupportedFeaturesAreRefusedWithTheirPath) {
  const std::string root = "response_format.json_schema.schema";
  expect_refused(R"({"type": "object", "properties": {"x": {"type": "string", "pattern": "^a$"}}})", root + ".properties.x",
                 "'pattern' is not supported");
  expect_refused(R"({"type": "integer", "minimum": 1})", root, "'minimum' other than 0");
  expect_refused(R"({"type": "integer", "maximum": 9})", root, "'maximum' is not supported");
  expect_refused(R"({"type": "number", "exclusiveMinimum": 0})", root, "'exclusiveMinimum'");
  expect_refused(R"({"type": "number", "multipleOf": 2})", root, "'multipleOf'");
  expect_refused(R"({"type": "array", "items": {"type": "integer"}, "uniqueItems": true})", root, "uniqueItems");
  expect_refused(R"({"type": "array", "prefixItems": [{"type": "integer"}]})", root, "'prefixItems'");
  expect_refused(R"({"type": "object", "properties": {"a": {"not": {"type": "null"}}}})", root + ".properties.a", "'not'");
  expect_refused(R"({"type": "object", "patternProperties": {"^x": {}}})", root, "'patternProperties'");
  expect_refused(R"({"type": "object", "minProperties": 1})", root, "'minProperties'");
  expect_refused(R"({"allOf": [{"type": "object"}, {"required": ["a"]}]})", root, "allOf with more than one");
  expect_refused(R"({"anyOf": [{"type": "string"}], "properties": {"a": {}}})", root, "'anyOf' beside 'properties'");
  expect_refused(R"({"type": "object", "properties": {"a": {}}, "required": ["a", "b"]})", root + ".required", "'b' is not among");
  expect_refused(R"({"type": "object", "required": ["a"]})", root + ".required", "'a' is not among");
  expect_refused(R"({"type": "strin"})", root + ".type", "must be one of");
  expect_refused(R"({"$ref": "#/$defs/missing"})", root + ".$ref", "does not resolve");
  expect_refused(R"({"$ref": "https://example.com/s.json"})", root + ".$ref", "not a local reference");
  // Recursion: a tree whose children are trees.
  expect_refused(R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
      "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["kids"]}}})",
                 root + ".$defs.node.properties.kids.items.$ref", "recursive");
  expect_refused(R"({"type": "object", "properties": {"child": {"$ref": "#"}}})", root + ".properties.child.$ref", "recursive");
  // Inside a definition, the path is the definition's own.
  expect_refused(R"({"$ref": "#/$defs/a", "$defs": {"a": {"type": "string", "pattern": "x"}}})", root + ".$defs.a", "'pattern'");
}

TEST(StructuredOutput, ReferencesCannotMultiplyTheGrammarWithoutBound) {
  // Each level uses the one below eight times: 8^6 copies unless shared.
  // (A schema whose references still multiply it beyond 50000 grammar
  // nodes is refused; the daemon also bounds the schema's own size.)
  Json schema = Json::parse(R"({"$defs": {"l0": {"type": "string"}}})");
  for (int level = 1; level <= 6; ++level) {
    Json props = Json::object();
    for (int i = 0; i < 8; ++i) props["p" + std::to_string(i)] = {{"$ref", "#/$defs/l" + std::to_string(level - 1)}};
    schema["$defs"]["l" + std::to_string(level)] = {{"type", "object"}, {"properties", props}};
  }
  schema["$ref"] = "#/$defs/l6";
  const auto t0 = std::chrono::steady_clock::now();
  const auto g = strict(schema);  // shared per depth: small and quick
  EXPECT_LT(g->size(), 2000u);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
  Recognizer r(*g);
  EXPECT_TRUE(r.feed(R"({"p0": {"p0": {"p0": {"p0": {"p0": {"p0": "x"}}}}}})"));
  EXPECT_TRUE(r.complete());
}

TEST(StructuredOutput, LenientCompilationStillIgnoresWhatItCannotFollow) {
  // Tool arguments keep the old reading: such keywords are ignored.
  Grammar g;
  g.set_root(g.add_schema(Json::parse(R"({"type": "string", "pattern": "^a$"})")));
  EXPECT_EQ(judge(g, R"("b")"), kComplete);
  Grammar r;
  r.set_root(r.add_schema(Json::parse(R"({"$ref": "#", "type": "object"})")));  // recursive: any value
  EXPECT_EQ(judge(r, "[1]"), kComplete);
}

TEST(StructuredOutput, JsonObjectModeTakesAnyObjectOnly) {
  const auto g = compile_json_output(nullptr, {});
  EXPECT_EQ(judge(*g, "{}"), kComplete);
  EXPECT_EQ(judge(*g, R"({"a": [1, {"b": null}], "c": "d"})"), kComplete);
  EXPECT_EQ(judge(*g, "[1]"), kReject);
  EXPECT_EQ(judge(*g, R"("x")"), kReject);
  EXPECT_EQ(judge(*g, "1"), kReject);
  EXPECT_EQ(judge(*g, R"({"a": {"b": {"c": {"d": 1}}}})"), kReject);  // deeper than any_depth 3
}

TEST(StructuredOutput, RandomWalksValidate) {
  // Every text a random walk through the strict grammar completes is valid.
  const Json schema = Json::parse(kPerson);
  const auto g = strict(schema);
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    Recognizer r(*g);
    std::string out;
    while (!r.complete() || rng() % 4 != 0) {
      std::vector<uint8_t> allowed;
      for (int b = 0; b < 256; ++b)
        if (Recognizer copy(r); copy.feed(static_cast<uint8_t>(b))) allowed.push_back(static_cast<uint8_t>(b));
      if (allowed.empty()) break;
      std::vector<uint8_t> closing;  // favoured, so strings end well before their limits
      for (uint8_t b : allowed)
        if (b == '"' || b == ']' || b == '}' || b == ',') closing.push_back(b);
      const auto& pool = !closing.empty() && rng() % 3 == 0 ? closing : allowed;
      const uint8_t b = pool[rng() % pool.size()];
      ASSERT_TRUE(r.feed(b));
      out.push_back(static_cast<char>(b));
    }
    ASSERT_TRUE(r.complete()) << out;
    const Json value = Json::parse(out, nullptr, false);
    ASSERT_FALSE(value.is_discarded()) << out;
    EXPECT_EQ(testing::validate(value, schema), "") << out;
  }
}

}  // namespace
}  // namespace mnemo::engine
