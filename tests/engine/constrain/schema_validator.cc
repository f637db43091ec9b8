#include "schema_validator.h"

#include <algorithm>

namespace mnemo::engine::testing {

namespace {

using Json = nlohmann::ordered_json;

size_t code_points(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string check_type(const Json& v, const Json& s, const std::string& type, const std::string& where, const Json* root) {
  if (type == "null") return v.is_null() ? "" : where + ": not null";
  if (type == "boolean") return v.is_boolean() ? "" : where + ": not a boolean";
  if (type == "integer") return v.is_number_integer() ? "" : where + ": not an integer";
  if (type == "number") {
    if (!v.is_number()) return where + ": not a number";
    if (s.contains("minimum") && v.get<double>() < s["minimum"].get<double>() && s["minimum"].get<double>() >= 0) return where + ": below minimum";
    return "";
  }
  if (type == "string") {
    if (!v.is_string()) return where + ": not a string";
    const size_t n = code_points(v.get<std::string>());
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return where + ": longer than maxLength";
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return where + ": shorter than minLength";
    return "";
  }
  if (type == "array") {
    if (!v.is_array()) return where + ": not an array";
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return where + ": more than maxItems";
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return where + ": fewer than minItems";
    if (s.contains("items"))
      for (size_t i = 0; i < v.size(); ++i)
        if (auto e = validate(v[i], s["items"], where + "[" + std::to_string(i) + "]", root); !e.empty()) return e;
    return "";
  }
  if (type == "object") {
    if (!v.is_object()) return where + ": not an object";
    if (!s.contains("properties")) {
      if (!s.contains("additionalProperties")) return "";
      const Json& extra = s["additionalProperties"];
      if (extra.is_boolean()) return extra.get<bool>() || v.empty() ? "" : where + ": no properties allowed";
      for (const auto& [k, x] : v.items())
        if (auto e = validate(x, extra, where + "." + k, root); !e.empty()) return e;
      return "";
    }
    const Json& props = s["properties"];
    for (const auto& [k, x] : v.items()) {
      if (!props.contains(k)) return where + ": unexpected property '" + k + "'";
      if (auto e = validate(x, props[k], where + "." + k, root); !e.empty()) return e;
    }
    if (s.contains("required"))
      for (const auto& r : s["required"])
        if (!v.contains(r.get<std::string>())) return where + ": missing required '" + r.get<std::string>() + "'";
    return "";
  }
  return "";  // unknown type names constrain nothing
}

}  // namespace

std::string validate(const Json& v, const Json& s, const std::string& where, const Json* root) {
  if (!root) root = &s;
  if (s.is_boolean()) return s.get<bool>() ? "" : where + ": schema false";
  if (s.contains("$ref")) return validate(v, root->at(Json::json_pointer(s["$ref"].get<std::string>().substr(1))), where, root);
  if (s.contains("const")) return v == s["const"] ? "" : where + ": not the const";
  if (s.contains("enum")) {
    for (const auto& e : s["enum"])
      if (e == v) return "";
    return where + ": not one of the enum values";
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (s.contains(key)) {
      for (const auto& alt : s[key])
        if (validate(v, alt, where, root).empty()) return "";
      return where + ": matches no alternative of " + key;
    }
  }
  if (s.contains("allOf"))
    for (const auto& alt : s["allOf"])
      if (auto e = validate(v, alt, where, root); !e.empty()) return e;
  std::vector<std::string> types;
  if (s.contains("type")) {
    if (s["type"].is_string()) types.push_back(s["type"].get<std::string>());
    else for (const auto& t : s["type"]) types.push_back(t.get<std::string>());
  } else if (s.contains("properties")) {
    types.push_back("object");
  } else if (s.contains("items")) {
    types.push_back("array");
  }
  if (types.empty()) return "";
  if (s.value("nullable", false)) types.push_back("null");
  std::string first_error;
  for (const auto& t : types) {
    auto e = check_type(v, s, t, where, root);
    if (e.empty()) return "";
    if (first_error.empty()) first_error = e;
  }
  return first_error;
}

}  // namespace mnemo::engine::testing
