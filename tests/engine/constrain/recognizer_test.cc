// The byte-level recogniser against each schema feature: which texts are
// complete, which are viable prefixes, which are rejected.
#include "engine/constrain/recognizer.h"

#include <gtest/gtest.h>

#include <stdexcept>

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

Grammar compile(const Json& schema, GrammarLimits limits = {}) {
  Grammar g(limits);
  g.set_root(g.add_schema(schema));
  return g;
}

struct Case {
  const char* schema;
  const char* text;
  Verdict expect;
};

const char* const kObj = R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["b"]})";
const char* const kEnum = R"({"enum": ["red", "green", 1, 12, null, true, {"k": [1]}]})";

const Case kCases[] = {
    // objects: schema order, required, no other keys, limited whitespace
    {kObj, R"({"b": "x"})", kComplete},
    {kObj, R"({"a": 1, "b": "x"})", kComplete},
    {kObj, R"({"a":1,"b":"x"})", kComplete},
    {kObj, R"({"a": 1, "b": "x")", kPrefix},
    {kObj, R"({"b": "x", "a": 1})", kReject},
    {kObj, R"({"a": 1})", kReject},
    {kObj, R"({})", kReject},
    {kObj, R"({"c": 1})", kReject},
    {kObj, R"({"a":  1)", kReject},
    {kObj, R"({ "a": 1)", kReject},
    {kObj, R"({"a": 1 , )", kReject},
    {kObj, R"({"a": 1.5)", kReject},
    {kObj, R"({"a": 01)", kReject},
    {kObj, R"({"a)", kPrefix},
    {kObj, R"({"ab)", kReject},
    {R"({"type": "object", "properties": {"x": {}, "xy": {}}})", R"({"xy": 1})", kComplete},
    {R"({"type": "object", "properties": {"x": {}, "xy": {}}})", R"({"x": 1, "xy": 2})", kComplete},
    {R"({"type": "object", "properties": {"x": {}, "xy": {}}})", R"({})", kComplete},
    {R"({"type": "object", "properties": {}})", R"({})", kComplete},
    {R"({"type": "object", "properties": {}})", R"({")", kReject},
    {R"({"type": "object", "properties": {"o": {"type": "object", "properties": {"p": {"type": "boolean"}}, "required": ["p"]}}, "required": ["o"]})",
     R"({"o": {"p": false}})", kComplete},
    {R"({"type": "object", "properties": {"we\"ird": {"type": "null"}}})", R"({"we\"ird": null})", kComplete},
    // free-form objects
    {R"({"type": "object"})", R"({"x": 1, "y": "z", "x": [true]})", kComplete},
    {R"({"type": "object"})", R"({"x" 1})", kReject},
    {R"({"type": "object", "additionalProperties": {"type": "integer"}})", R"({"x": 1, "y": 2})", kComplete},
    {R"({"type": "object", "additionalProperties": {"type": "integer"}})", R"({"x": "1")", kReject},
    {R"({"type": "object", "additionalProperties": false})", R"({})", kComplete},
    {R"({"type": "object", "additionalProperties": false})", R"({")", kReject},
    // strings
    {R"({"type": "string", "maxLength": 3})", R"("abc")", kComplete},
    {R"({"type": "string", "maxLength": 3})", R"("abcd")", kReject},
    {R"({"type": "string", "maxLength": 3})", R"("a\nb")", kComplete},
    {R"({"type": "string", "maxLength": 3})", "\"\xC3\xA9\xC3\xA9\xC3\xA9\"", kComplete},
    {R"({"type": "string", "maxLength": 3})", "\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\"", kReject},
    {R"({"type": "string"})", R"("\u00e9\/\"\\\b\f\r\t")", kComplete},
    {R"({"type": "string"})", R"("\ud83d")", kReject},
    {R"({"type": "string"})", R"("\x")", kReject},
    {R"({"type": "string"})", "\"a\nb\"", kReject},
    {R"({"type": "string"})", "\"\xC3\x28\"", kReject},
    {R"({"type": "string"})", "\"\xC0\x80\"", kReject},
    {R"({"type": "string"})", "\"\xED\xA0\x80\"", kReject},
    {R"({"type": "string"})", "\"\xF0\x9F\x98\x80\"", kComplete},
    {R"({"type": "string"})", "\"\xF0\x9F", kPrefix},
    {R"({"type": "string"})", "\"a</b\"", kComplete},
    {R"({"type": "string", "minLength": 2})", R"("a")", kReject},
    {R"({"type": "string", "minLength": 2})", R"("ab")", kComplete},
    // numbers
    {R"({"type": "number"})", "-0", kComplete},
    {R"({"type": "number"})", "1.25E-3", kComplete},
    {R"({"type": "number"})", "1e5", kComplete},
    {R"({"type": "number"})", "1.", kPrefix},
    {R"({"type": "number"})", "1e", kPrefix},
    {R"({"type": "number"})", ".5", kReject},
    {R"({"type": "number"})", "+1", kReject},
    {R"({"type": "number"})", "00", kReject},
    {R"({"type": "number"})", "1234567890123456", kReject},  // 16 digits
    {R"({"type": "integer"})", "-42", kComplete},
    {R"({"type": "integer"})", "4.2", kReject},
    {R"({"type": "integer"})", "4e2", kReject},
    {R"({"type": "integer", "minimum": 0})", "-1", kReject},
    {R"({"type": "integer", "minimum": 0})", "7", kComplete},
    // enums and constants
    {kEnum, R"("red")", kComplete},
    {kEnum, R"("re)", kPrefix},
    {kEnum, R"("blue")", kReject},
    {kEnum, "1", kComplete},
    {kEnum, "12", kComplete},
    {kEnum, "123", kReject},
    {kEnum, "null", kComplete},
    {kEnum, "true", kComplete},
    {kEnum, "false", kReject},
    {kEnum, R"({"k":[1]})", kComplete},
    {R"({"const": "on"})", R"("on")", kComplete},
    {R"({"const": "on"})", R"("off")", kReject},
    // booleans, null
    {R"({"type": "boolean"})", "false", kComplete},
    {R"({"type": "boolean"})", "null", kReject},
    {R"({"type": "null"})", "null", kComplete},
    // arrays
    {R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2})", "[]", kReject},
    {R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2})", "[1]", kComplete},
    {R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2})", "[1, 2]", kComplete},
    {R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2})", "[1,2,", kReject},
    {R"({"type": "array", "items": {"type": "string"}})", R"(["a", "b"])", kComplete},
    {R"({"type": "array", "items": {"type": "string"}})", R"(["a", 1])", kReject},
    {R"({"type": "array", "items": {"type": "string"}})", R"([ "a"])", kReject},
    // unions
    {R"({"type": ["string", "null"]})", "null", kComplete},
    {R"({"type": ["string", "null"]})", R"("x")", kComplete},
    {R"({"type": ["string", "null"]})", "1", kReject},
    {R"({"type": "string", "nullable": true})", "null", kComplete},
    {R"({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]})", "3", kComplete},
    {R"({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]})", R"(["a"])", kComplete},
    {R"({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]})", R"("a")", kReject},
    {R"({"type": ["integer", "number"]})", "2.5", kComplete},
    // anything (nothing usable in the schema), nested to the depth limit
    {R"({})", R"({"k": [1, {"z": null}], "s": "t"})", kComplete},
    {R"({"description": "whatever"})", "[[[1]]]", kComplete},
    {R"({})", "[[[[1]]]]", kReject},
    {R"(true)", "-3.5", kComplete},
};

TEST(Recognizer, SchemaFeatureTable) {
  for (const Case& c : kCases) {
    const Grammar g = compile(Json::parse(c.schema));
    EXPECT_EQ(judge(g, c.text), c.expect) << "schema " << c.schema << "\ntext " << c.text;
  }
}

TEST(Recognizer, ForbidCloseTagKeepsEscapedSlash) {
  GrammarLimits limits;
  limits.forbid_close_tag = true;
  const Grammar g = compile(Json::parse(R"({"type": "string"})"), limits);
  EXPECT_EQ(judge(g, "\"a</b\""), kReject);
  EXPECT_EQ(judge(g, "\"a<\\/b\""), kComplete);
  EXPECT_EQ(judge(g, "\"a< /b\""), kComplete);
}

TEST(Recognizer, NumberAtTheRootMayEndOrGoOn) {
  const Grammar g = compile(Json::parse(R"({"type": "integer"})"));
  Recognizer r(g);
  ASSERT_TRUE(r.feed("12"));
  EXPECT_TRUE(r.complete());
  EXPECT_TRUE(r.can_continue());
  Recognizer s(g);
  ASSERT_TRUE(s.feed("123456789012345"));
  EXPECT_TRUE(s.complete());
  EXPECT_FALSE(s.can_continue());
}

TEST(Recognizer, StringLengthBoundedByDefault) {
  GrammarLimits limits;
  limits.max_string_chars = 4;
  const Grammar g = compile(Json::parse(R"({"type": "string", "maxLength": 100})"), limits);
  EXPECT_EQ(judge(g, R"("abcd")"), kComplete);
  EXPECT_EQ(judge(g, R"("abcde")"), kReject);
}

TEST(Recognizer, ChoiceWithContinuations) {
  Grammar g;
  const uint32_t num = g.add_schema(Json::parse(R"({"type": "integer"})"));
  const uint32_t str = g.add_schema(Json::parse(R"({"type": "string"})"));
  g.set_root(g.add_seq({g.add_choice({{"n=", static_cast<int32_t>(num)}, {"s=", static_cast<int32_t>(str)}}), g.add_literal(";")}));
  EXPECT_EQ(judge(g, "n=42;"), kComplete);
  EXPECT_EQ(judge(g, R"(s="x";)"), kComplete);
  EXPECT_EQ(judge(g, R"(n="x";)"), kReject);
  EXPECT_EQ(judge(g, "n=;"), kReject);
  EXPECT_EQ(judge(g, "n=4"), kPrefix);
}

TEST(Recognizer, UnsatisfiableSchemasThrow) {
  for (const char* s : {R"({"enum": []})", "false", R"({"type": "array", "minItems": 3, "maxItems": 2})",
                        R"({"type": "string", "minLength": 300})", R"({"properties": {"a": false}})", "[1]"}) {
    Grammar g;
    EXPECT_THROW(g.add_schema(Json::parse(s)), std::invalid_argument) << s;
  }
}

TEST(Recognizer, DeepSchemaThrowsInsteadOfOverflowing) {
  Json s = {{"type", "integer"}};
  for (int i = 0; i < 40; ++i) s = {{"type", "array"}, {"items", s}};
  Grammar g;
  EXPECT_THROW(g.add_schema(s), std::invalid_argument);
}

}  // namespace
}  // namespace mnemo::engine
