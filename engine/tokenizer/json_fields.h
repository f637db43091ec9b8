// Typed field access for tokenizer.json parsing: every failure is a
// TokenizerError naming the field path, never a nlohmann exception.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/error.h"

namespace mnemo::engine::json_fields {

inline const nlohmann::json& require(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw TokenizerError(where + "." + key + ": missing");
  return j[key];
}

inline std::string type_of(const nlohmann::json& j, const std::string& where) {
  const auto& t = require(j, "type", where);
  if (!t.is_string()) throw TokenizerError(where + ".type: must be a string");
  return t.get<std::string>();
}

inline std::string string_or(const nlohmann::json& j, const char* key, const std::string& where, std::string fallback = {}) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) throw TokenizerError(where + "." + key + ": must be a string");
  return j[key].get<std::string>();
}

inline bool bool_or(const nlohmann::json& j, const char* key, const std::string& where, bool fallback) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) throw TokenizerError(where + "." + key + ": must be a boolean");
  return j[key].get<bool>();
}

inline int64_t int_or(const nlohmann::json& j, const char* key, const std::string& where, int64_t fallback) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number_integer()) throw TokenizerError(where + "." + key + ": must be an integer");
  return j[key].get<int64_t>();
}

inline const nlohmann::json& array_of(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& a = require(j, key, where);
  if (!a.is_array()) throw TokenizerError(where + "." + key + ": must be an array");
  return a;
}

// Patterns are {"String": "..."} or {"Regex": "..."}.
struct Pattern {
  std::string text;
  bool regex = false;
};
inline Pattern pattern(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& p = require(j, key, where);
  if (p.is_string()) return {p.get<std::string>(), false};
  for (const char* kind : {"String", "Regex"}) {
    if (p.is_object() && p.contains(kind) && p[kind].is_string())
      return {p[kind].get<std::string>(), std::string(kind) == "Regex"};
  }
  throw TokenizerError(where + "." + key + ": must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace mnemo::engine::json_fields
