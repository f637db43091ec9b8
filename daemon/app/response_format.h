#pragma once
// What shape the assistant's answer must take (OpenAI's response_format in
// Chat Completions, text.format in the Responses API): free text, any JSON
// object, or JSON valid against a schema. The grammar is compiled when the
// request is parsed, so an unsupported schema is a 400 before anything
// runs, and the Responder only builds the token constraint from it.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/constrain/grammar.h"

namespace mnemo::daemon::app {

struct ResponseFormat {
  enum class Type { Text, JsonObject, JsonSchema };
  Type type = Type::Text;
  std::string name;         // JsonSchema: the schema's name, as the client gave it
  std::string description;  // JsonSchema: ignored for decoding
  nlohmann::ordered_json schema;  // JsonSchema
  // Accepted and reported back; decoding is always strict (every output
  // validates; what the grammar cannot follow is refused, never ignored).
  bool strict = false;
  std::shared_ptr<const engine::Grammar> grammar;  // the answer's grammar; null for Text
  bool constrained() const { return type != Type::Text; }
};

// Chat Completions' response_format: {"type": "text"}, {"type":
// "json_object"}, or {"type": "json_schema", "json_schema": {"name",
// "schema", "strict", "description"}}. `field` is where the value sits in
// the request ("response_format"), for errors. Throws BadRequest
// (response_spec.h) whose field is the path at fault: the schema keyword
// that cannot be honoured, e.g. "response_format.json_schema.schema.properties.x".
ResponseFormat parse_response_format(const nlohmann::ordered_json& v, const std::string& field);

// The Responses API's text.format, the same with the json_schema members
// flattened into the format object: {"type": "json_schema", "name",
// "schema", "strict", "description"}. field: e.g. "text.format".
ResponseFormat parse_text_format(const nlohmann::ordered_json& v, const std::string& field);

}  // namespace mnemo::daemon::app
