// A grammar for constrained JSON generation: a few node kinds that the
// byte-level pushdown recogniser (recognizer.h) walks. Nodes come from a
// JSON schema (add_schema, schema_compiler.cc) or are put together by hand
// (literals, choices, sequences) for the text around a tool call.
//
// Every node accepts a finite, non-empty language and every prefix the
// recogniser accepts can be completed, so a constrained generation always
// ends and never paints itself into a corner.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnemo::engine {

// Bounds that keep every output finite.
struct GrammarLimits {
  uint32_t max_string_chars = 256;  // and the cap on a schema's maxLength
  uint32_t max_key_chars = 64;      // keys of free-form objects
  uint32_t max_array_items = 16;    // arrays without maxItems
  uint32_t max_object_keys = 8;     // free-form objects
  uint16_t max_int_digits = 15;
  uint16_t max_frac_digits = 15;
  uint16_t max_exp_digits = 2;  // 15 digits and e99 stay within a double
  int any_depth = 3;  // nesting allowed where the schema says nothing
  // No "</" inside strings: Hermes tool calls end at the first
  // "</tool_call>", even one inside a JSON string.
  bool forbid_close_tag = false;
};

// A schema that cannot be compiled, with the JSON path of the part at
// fault (e.g. "response_format.json_schema.schema.properties.x"), so the
// daemon can name it in a 400.
class SchemaError : public std::invalid_argument {
 public:
  SchemaError(const std::string& path, const std::string& message)
      : std::invalid_argument(path + ": " + message), path_(path), reason_(message) {}
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }  // what() without the path

 private:
  std::string path_, reason_;
};

// How add_schema reads a schema.
struct SchemaOptions {
  std::string path = "schema";  // the schema's own JSON path, for errors
  // Structured outputs: refuse every keyword that changes validity and
  // that the grammar cannot follow (schema_keywords.h), and every $ref
  // that does not resolve or is recursive. Off (tool arguments, as
  // before): such keywords are ignored and such a $ref accepts any value.
  bool strict = false;
};

struct GrammarNode {
  enum class Kind : uint8_t { Literal, Seq, Object, FreeObject, Array, String, Number, Union };
  struct Edge {
    uint8_t byte;
    uint32_t to;
  };
  struct TrieNode {
    std::vector<Edge> edges;
    bool terminal = false;
    int32_t next = -1;  // node that follows this literal, -1 when none
  };
  struct Property {
    std::string key;  // the JSON text of the name, quotes included
    uint32_t value;
    bool required;
  };

  Kind kind;
  std::vector<TrieNode> trie;           // Literal: alternatives as a trie, root first
  std::vector<uint32_t> parts;          // Seq
  std::vector<Property> props;          // Object, in emission order
  std::vector<uint32_t> required_from;  // Object: first required index >= i, size props+1
  uint32_t item = 0;                    // Array: item node; FreeObject: value node
  uint32_t key = 0;                     // FreeObject: key string node
  uint32_t min_count = 0, max_count = 0;  // Array items, FreeObject keys, String chars
  bool integer = false;                 // Number: no fraction, no exponent
  bool non_negative = false;            // Number: no minus sign
  std::vector<int32_t> dispatch;        // Union: the node for each first byte, -1 none
};

class Grammar {
 public:
  explicit Grammar(GrammarLimits limits = {});

  // A JSON schema compiled to nodes; returns its node. Supported: type
  // (also as a list), enum, const, properties with required (emitted in the
  // schema's order, optional ones skippable, no other keys; without
  // properties, free-form keys with additionalProperties typing the
  // values), items,
  // minItems/maxItems, minLength/maxLength, minimum >= 0 on numbers,
  // anyOf/oneOf and nullable (alternatives told apart by their first byte;
  // one that cannot be is dropped), allOf with one schema, local $ref
  // ("#", "#/$defs/X", "#/definitions/X", any JSON pointer into the
  // schema; not recursive). Other keywords are ignored unless
  // options.strict; a schema with nothing usable accepts any JSON value.
  // Throws SchemaError (a std::invalid_argument) for schemas nothing can
  // satisfy (empty enum, false, minItems > maxItems), nested beyond what
  // the recogniser holds, or, when strict, using what it cannot honour.
  uint32_t add_schema(const nlohmann::ordered_json& schema, const SchemaOptions& options = {});
  // Exactly this text.
  uint32_t add_literal(std::string_view text);
  // One of several texts, each optionally followed by a node (-1: none).
  // Texts that are prefixes of one another are allowed only without a
  // following node.
  uint32_t add_choice(const std::vector<std::pair<std::string, int32_t>>& alternatives);
  uint32_t add_seq(std::vector<uint32_t> parts);
  // Any JSON value within the limits.
  uint32_t add_any() { return any_value(limits_.any_depth); }
  // Any JSON object within the limits (response_format json_object).
  uint32_t add_any_object();

  void set_root(uint32_t node) { root_ = node; }
  uint32_t root() const { return root_; }
  const GrammarNode& node(uint32_t id) const { return nodes_[id]; }
  const GrammarLimits& limits() const { return limits_; }
  size_t size() const { return nodes_.size(); }

  // Bytes a node's text can start with.
  std::vector<bool> first_bytes(uint32_t node) const;

 private:
  friend class SchemaCompiler;
  uint32_t add(GrammarNode n);
  uint32_t string_node(uint32_t min_chars, uint32_t max_chars);
  uint32_t number_node(bool integer, bool non_negative);
  uint32_t any_value(int depth);

  GrammarLimits limits_;
  std::vector<GrammarNode> nodes_;
  std::vector<int32_t> any_by_depth_;
  uint32_t root_ = 0;
};

}  // namespace mnemo::engine
