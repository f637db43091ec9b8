#include "daemon/app/response_format.h"

#include "daemon/app/response_spec.h"
#include "daemon/protocol/tool_limits.h"
#include "engine/constrain/json_output_constraint.h"

namespace mnemo::daemon::app {

namespace {

using Json = nlohmann::ordered_json;

const Json* member(const Json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_member(const Json& obj, const char* name, const std::string& path) {
  const Json* v = member(obj, name);
  if (!v) return "";
  if (!v->is_string()) throw BadRequest("'" + path + "' must be a string", path);
  return v->get<std::string>();
}

// The json_schema members, wherever the API puts them: `at` is their
// object and `path` its place in the request.
ResponseFormat json_schema(const Json& at, const std::string& path) {
  ResponseFormat f;
  f.type = ResponseFormat::Type::JsonSchema;
  f.name = string_member(at, "name", path + ".name");
  if (f.name.size() > 64) throw BadRequest("'" + path + ".name' is longer than 64 characters", path + ".name");
  f.description = string_member(at, "description", path + ".description");
  if (const Json* s = member(at, "strict")) {
    if (!s->is_boolean()) throw BadRequest("'" + path + ".strict' must be a boolean", path + ".strict");
    f.strict = s->get<bool>();
  }
  const std::string schema_path = path + ".schema";
  const Json* schema = member(at, "schema");
  // OpenAI makes the schema optional: without one, any JSON value.
  f.schema = schema ? *schema : Json::object();
  if (!f.schema.is_object() && !f.schema.is_boolean())
    throw BadRequest("'" + schema_path + "' must be a JSON schema object", schema_path);
  if (auto why = protocol::schema_problem(f.schema)) throw BadRequest("'" + schema_path + "': " + *why, schema_path);
  try {
    f.grammar = engine::compile_json_output(&f.schema, engine::SchemaOptions{.path = schema_path, .strict = true});
  } catch (const engine::SchemaError& e) {
    throw BadRequest("'" + e.path() + "': " + e.reason(), e.path());
  } catch (const std::invalid_argument& e) {
    throw BadRequest("'" + schema_path + "': " + e.what(), schema_path);
  } catch (const nlohmann::json::exception& e) {  // a keyword of the wrong JSON type, e.g. "nullable": "yes"
    throw BadRequest("'" + schema_path + "': " + e.what(), schema_path);
  }
  return f;
}

ResponseFormat parse(const Json& v, const std::string& field, bool flattened) {
  if (!v.is_object() || !member(v, "type") || !v["type"].is_string())
    throw BadRequest("'" + field + "' must be an object with a 'type' of text, json_object or json_schema", field);
  const std::string type = v["type"].get<std::string>();
  if (type == "text") return {};
  if (type == "json_object") {
    ResponseFormat f;
    f.type = ResponseFormat::Type::JsonObject;
    f.grammar = engine::compile_json_output(nullptr, {});
    return f;
  }
  if (type != "json_schema")
    throw BadRequest("'" + field + ".type' must be text, json_object or json_schema, not '" + type + "'", field + ".type");
  if (flattened) return json_schema(v, field);
  const Json* js = member(v, "json_schema");
  if (!js || !js->is_object())
    throw BadRequest("'" + field + ".json_schema' must be an object {name, schema, strict}", field + ".json_schema");
  return json_schema(*js, field + ".json_schema");
}

}  // namespace

ResponseFormat parse_response_format(const Json& v, const std::string& field) { return parse(v, field, false); }

ResponseFormat parse_text_format(const Json& v, const std::string& field) { return parse(v, field, true); }

}  // namespace mnemo::daemon::app
