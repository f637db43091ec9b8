// JSON schema -> grammar nodes (Grammar::add_schema).
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "engine/constrain/grammar.h"
#include "engine/constrain/schema_keywords.h"

namespace mnemo::engine {

namespace {

using Json = nlohmann::ordered_json;

// Deep enough for real tool schemas, shallow enough that the recogniser's
// fixed stack (recognizer.h) always holds the frames.
constexpr int kMaxSchemaDepth = 24;
// References multiply a schema; this bounds the grammar a request can make
// the daemon build (a few MB).
constexpr size_t kMaxGrammarNodes = 50000;

std::string dump(const Json& v, const std::string& where) {
  try {
    return v.dump();
  } catch (const nlohmann::json::exception& e) {
    throw SchemaError(where, e.what());
  }
}

uint32_t count_or(const Json& s, const char* key, uint32_t fallback, const std::string& where) {
  if (!s.contains(key) || s[key].is_null()) return fallback;
  const Json& v = s[key];
  if (!v.is_number_integer() && !v.is_number_unsigned()) throw SchemaError(where + "." + key, "must be an integer");
  const auto n = v.get<int64_t>();
  if (n < 0) throw SchemaError(where + "." + key, "must not be negative");
  return static_cast<uint32_t>(std::min<int64_t>(n, UINT32_MAX));
}

}  // namespace

class SchemaCompiler {
 public:
  SchemaCompiler(Grammar& g, const Json& root, const SchemaOptions& options) : g_(g), root_(root), options_(options) {
    expanding_.insert(&root_);  // "#" inside the schema is recursion
  }

  uint32_t compile(const Json& s, const std::string& where, int depth) {
    if (depth > kMaxSchemaDepth) throw SchemaError(where, "schema nested deeper than " + std::to_string(kMaxSchemaDepth));
    if (g_.size() > kMaxGrammarNodes)
      throw SchemaError(where, "the schema expands to more than " + std::to_string(kMaxGrammarNodes) + " grammar nodes");
    if (s.is_boolean()) {
      if (!s.get<bool>()) throw SchemaError(where, "schema false accepts nothing");
      return g_.any_value(g_.limits_.any_depth);
    }
    if (!s.is_object()) throw SchemaError(where, "a schema must be an object or a boolean");
    if (options_.strict) check_strict_keywords(s, where);
    if (s.contains("$ref")) return reference(s["$ref"], where + ".$ref", depth);
    if (s.contains("const")) return g_.add_literal(dump(s["const"], where + ".const"));
    if (s.contains("enum")) return enumeration(s["enum"], where + ".enum");
    for (const char* key : {"anyOf", "oneOf"}) {
      if (s.contains(key) && s[key].is_array() && !s[key].empty()) {
        std::vector<uint32_t> alts;
        for (size_t i = 0; i < s[key].size(); ++i) {
          const std::string at = where + "." + key + "[" + std::to_string(i) + "]";
          const Json& alt = s[key][i];
          // {"type": T, "anyOf": [...]}: an alternative that names no
          // type of its own is of type T.
          if (options_.strict && s.contains("type") && alt.is_object() && !alt.contains("type") &&
              !alt.contains("$ref") && !alt.contains("const") && !alt.contains("enum") && !alt.contains("anyOf") &&
              !alt.contains("oneOf")) {
            Json typed = alt;
            typed["type"] = s["type"];
            alts.push_back(compile(typed, at, depth + 1));
          } else {
            alts.push_back(compile(alt, at, depth + 1));
          }
        }
        return union_of(alts, where);
      }
      if (options_.strict && s.contains(key)) throw SchemaError(where + "." + key, "must be a non-empty array");
    }
    if (s.contains("allOf") && s["allOf"].is_array() && s["allOf"].size() == 1)
      return compile(s["allOf"][0], where + ".allOf[0]", depth + 1);

    std::vector<std::string> types;
    if (s.contains("type")) {
      const Json& t = s["type"];
      if (t.is_string()) types.push_back(t.get<std::string>());
      else if (t.is_array())
        for (const auto& x : t)
          if (x.is_string()) types.push_back(x.get<std::string>());
    } else if (s.contains("properties")) {
      types.push_back("object");
    } else if (s.contains("items")) {
      types.push_back("array");
    } else if (options_.strict) {
      // Keywords of one type without a type: read them as that type (a
      // narrowing, so every output still validates).
      if (s.contains("minLength") || s.contains("maxLength")) types.push_back("string");
      else if (s.contains("minItems") || s.contains("maxItems")) types.push_back("array");
      else if (s.contains("additionalProperties") || s.contains("required")) types.push_back("object");
    }
    if (s.value("nullable", false) && std::find(types.begin(), types.end(), "null") == types.end() && !types.empty())
      types.push_back("null");
    std::vector<uint32_t> alts;
    for (const auto& t : types)
      if (auto node = typed(s, t, where, depth)) alts.push_back(*node);
    if (alts.empty()) return g_.any_value(g_.limits_.any_depth);
    return alts.size() == 1 ? alts[0] : union_of(alts, where);
  }

 private:
  std::optional<uint32_t> typed(const Json& s, const std::string& type, const std::string& where, int depth) {
    const GrammarLimits& lim = g_.limits_;
    if (type == "string") {
      const uint32_t max = std::min(count_or(s, "maxLength", lim.max_string_chars, where), lim.max_string_chars);
      const uint32_t min = count_or(s, "minLength", 0, where);
      if (min > max) throw SchemaError(where, "minLength " + std::to_string(min) + " exceeds the usable maximum " + std::to_string(max));
      return g_.string_node(min, max);
    }
    if (type == "number" || type == "integer") {
      const bool non_negative = s.contains("minimum") && s["minimum"].is_number() && s["minimum"].get<double>() >= 0;
      return g_.number_node(type == "integer", non_negative);
    }
    if (type == "boolean") return g_.add_choice({{"true", -1}, {"false", -1}});
    if (type == "null") return g_.add_literal("null");
    if (type == "array") {
      const uint32_t item = s.contains("items") && (s["items"].is_object() || s["items"].is_boolean())
                                ? compile(s["items"], where + ".items", depth + 1)
                                : g_.any_value(std::max(0, lim.any_depth - 1));
      const uint32_t min = count_or(s, "minItems", 0, where);
      const uint32_t max = count_or(s, "maxItems", std::max(lim.max_array_items, min), where);
      if (min > max) throw SchemaError(where, "minItems " + std::to_string(min) + " exceeds maxItems " + std::to_string(max));
      return g_.add(GrammarNode{.kind = GrammarNode::Kind::Array, .item = item, .min_count = min, .max_count = max});
    }
    if (type == "object") return object(s, where, depth);
    return std::nullopt;  // unknown type names are ignored
  }

  uint32_t object(const Json& s, const std::string& where, int depth) {
    const GrammarLimits& lim = g_.limits_;
    if (options_.strict) {
      if (s.contains("properties") && !s["properties"].is_object()) throw SchemaError(where + ".properties", "must be an object");
      if (s.contains("required") && !(s["required"].is_array() &&
                                      std::all_of(s["required"].begin(), s["required"].end(), [](const Json& r) { return r.is_string(); })))
        throw SchemaError(where + ".required", "must be an array of property names");
      // A required key the grammar never writes would make every output invalid.
      const Json no_props = Json::object();
      const Json& props = s.contains("properties") ? s["properties"] : no_props;
      if (s.contains("required"))
        for (const auto& r : s["required"])
          if (!props.contains(r.get<std::string>()))
            throw SchemaError(where + ".required", "'" + r.get<std::string>() + "' is not among the properties");
    }
    if (!s.contains("properties") || !s["properties"].is_object()) {
      // Free-form keys; additionalProperties, when a schema, types the values.
      const Json extra = s.contains("additionalProperties") ? s["additionalProperties"] : Json(true);
      const bool none = extra.is_boolean() && !extra.get<bool>();
      const uint32_t value = extra.is_object() ? compile(extra, where + ".additionalProperties", depth + 1)
                                               : g_.any_value(std::max(0, lim.any_depth - 1));
      return g_.add(GrammarNode{.kind = GrammarNode::Kind::FreeObject,
                                .item = value,
                                .key = g_.string_node(0, lim.max_key_chars),
                                .max_count = none ? 0 : lim.max_object_keys});
    }
    std::set<std::string> required;
    if (s.contains("required") && s["required"].is_array())
      for (const auto& r : s["required"])
        if (r.is_string()) required.insert(r.get<std::string>());
    GrammarNode n{.kind = GrammarNode::Kind::Object};
    for (const auto& [name, sub] : s["properties"].items()) {
      const std::string at = where + ".properties." + name;
      const uint32_t value = compile(sub, at, depth + 1);
      n.props.push_back({dump(Json(name), at), value, required.contains(name)});
    }
    n.required_from.assign(n.props.size() + 1, static_cast<uint32_t>(n.props.size()));
    for (size_t i = n.props.size(); i-- > 0;)
      n.required_from[i] = n.props[i].required ? static_cast<uint32_t>(i) : n.required_from[i + 1];
    return g_.add(std::move(n));
  }

  uint32_t enumeration(const Json& values, const std::string& where) {
    if (!values.is_array() || values.empty()) throw SchemaError(where, "must be a non-empty array");
    std::vector<std::pair<std::string, int32_t>> texts;
    std::set<std::string> seen;
    for (const auto& v : values) {
      std::string t = dump(v, where);
      if (seen.insert(t).second) texts.emplace_back(std::move(t), -1);
    }
    return g_.add_choice(texts);
  }

  // Alternatives are told apart by their first byte; one that shares a
  // first byte with an earlier alternative is dropped (the recogniser is
  // deterministic), except a number that replaces an earlier integer.
  uint32_t union_of(std::vector<uint32_t> alts, const std::string& where) {
    GrammarNode u{.kind = GrammarNode::Kind::Union};
    u.dispatch.assign(256, -1);
    const GrammarNode* integer = nullptr;
    for (const uint32_t a : alts) {
      const GrammarNode& node = g_.nodes_[a];
      const auto first = g_.first_bytes(a);
      bool clash = false;
      for (int b = 0; b < 256; ++b) clash |= first[static_cast<size_t>(b)] && u.dispatch[static_cast<size_t>(b)] >= 0;
      const bool widen = clash && node.kind == GrammarNode::Kind::Number && !node.integer && integer;
      if (clash && !widen) continue;
      if (node.kind == GrammarNode::Kind::Number && node.integer) integer = &node;
      for (int b = 0; b < 256; ++b)
        if (first[static_cast<size_t>(b)]) u.dispatch[static_cast<size_t>(b)] = static_cast<int32_t>(a);
    }
    if (std::all_of(u.dispatch.begin(), u.dispatch.end(), [](int32_t d) { return d < 0; }))
      throw SchemaError(where, "no alternative can be generated");
    return g_.add(std::move(u));
  }

  // A local reference: a JSON pointer into the schema being compiled.
  // Compiled once per depth (the depth bound must hold wherever it is used).
  uint32_t reference(const Json& r, const std::string& where, int depth) {
    auto unusable = [&](const std::string& why) {
      if (options_.strict) throw SchemaError(where, why);
      return g_.any_value(g_.limits_.any_depth);  // as before references were read
    };
    if (!r.is_string()) return unusable("must be a string");
    const std::string ref = r.get<std::string>();
    if (!ref.starts_with("#")) return unusable("'" + ref + "' is not a local reference (\"#/$defs/...\")");
    const Json* target = nullptr;
    std::string target_path = options_.path;
    try {
      const Json::json_pointer pointer(ref.substr(1));
      if (!root_.contains(pointer)) return unusable("'" + ref + "' does not resolve in this schema");
      target = &root_.at(pointer);
      for (const std::string& token : split_pointer(ref.substr(1))) target_path += "." + token;
    } catch (const nlohmann::json::exception&) {
      return unusable("'" + ref + "' is not a JSON pointer");
    }
    if (expanding_.contains(target)) return unusable("'" + ref + "' is recursive, which is not supported");
    if (auto it = refs_.find({target, depth}); it != refs_.end()) return it->second;
    expanding_.insert(target);
    const uint32_t node = compile(*target, target_path, depth + 1);
    expanding_.erase(target);
    refs_[{target, depth}] = node;
    return node;
  }

  static std::vector<std::string> split_pointer(const std::string& pointer) {
    std::vector<std::string> out;
    for (size_t at = 1; at <= pointer.size() && !pointer.empty();) {
      const size_t end = std::min(pointer.find('/', at), pointer.size());
      out.push_back(pointer.substr(at, end - at));
      at = end + 1;
    }
    return out;
  }

  Grammar& g_;
  const Json& root_;
  const SchemaOptions& options_;
  std::map<std::pair<const Json*, int>, uint32_t> refs_;  // by target: spellings of one pointer share
  std::set<const Json*> expanding_;  // references being compiled: one met again is recursive
};

uint32_t Grammar::add_schema(const nlohmann::ordered_json& schema, const SchemaOptions& options) {
  return SchemaCompiler(*this, schema, options).compile(schema, options.path, 0);
}

}  // namespace mnemo::engine
