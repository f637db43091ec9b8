// tokenizer.json "normalizer": NFC, Prepend, Replace, Lowercase, Strip and
// Sequence of those.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mnemo::engine {

class Normalizer {
 public:
  static Normalizer from_json(const nlohmann::json& j, const std::string& where);  // null: identity
  std::string apply(std::string text) const;
  bool empty() const { return steps_.empty(); }

 private:
  struct Nfc {};
  struct Lowercase {};
  struct Prepend { std::string text; };
  struct Replace { std::string from, to; };
  struct Strip { bool left, right; };
  using Step = std::variant<Nfc, Lowercase, Prepend, Replace, Strip>;
  void add(const nlohmann::json& j, const std::string& where);
  std::vector<Step> steps_;
};

}  // namespace mnemo::engine
