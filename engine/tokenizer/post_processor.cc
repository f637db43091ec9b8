#include "engine/tokenizer/post_processor.h"

#include "engine/tokenizer/json_fields.h"

namespace mnemo::engine {

namespace jf = json_fields;

namespace {

int32_t id_of_pair(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& p = jf::require(j, key, where);
  if (!p.is_array() || p.size() != 2 || !p[1].is_number_integer())
    throw TokenizerError(where + "." + key + ": must be [token, id]");
  return p[1].get<int32_t>();
}

PostProcessor parse(const nlohmann::json& j, const std::string& where) {
  PostProcessor pp;
  const std::string type = jf::type_of(j, where);
  if (type == "ByteLevel") return pp;
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    pp.prefix.push_back(id_of_pair(j, "cls", where));
    pp.suffix.push_back(id_of_pair(j, "sep", where));
    return pp;
  }
  if (type == "Sequence") {
    const auto& list = jf::array_of(j, "processors", where);
    for (size_t i = 0; i < list.size(); ++i) {
      auto inner = parse(list[i], where + ".processors[" + std::to_string(i) + "]");
      pp.prefix.insert(pp.prefix.begin(), inner.prefix.begin(), inner.prefix.end());
      pp.suffix.insert(pp.suffix.end(), inner.suffix.begin(), inner.suffix.end());
    }
    return pp;
  }
  if (type != "TemplateProcessing") throw TokenizerError(where + ".type: unsupported post_processor '" + type + "'");
  const auto& single = jf::array_of(j, "single", where);
  const auto& specials = jf::require(j, "special_tokens", where);
  if (!specials.is_object()) throw TokenizerError(where + ".special_tokens: must be an object");
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string at = where + ".single[" + std::to_string(i) + "]";
    const auto& piece = single[i];
    if (piece.is_object() && piece.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    if (!piece.is_object() || !piece.contains("SpecialToken"))
      throw TokenizerError(at + ": must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    const std::string name = jf::string_or(piece["SpecialToken"], "id", at + ".SpecialToken");
    if (!specials.contains(name)) throw TokenizerError(at + ": special token '" + name + "' is not in special_tokens");
    const auto& ids = jf::array_of(specials[name], "ids", where + ".special_tokens[\"" + name + "\"]");
    for (const auto& id : ids) {
      if (!id.is_number_integer()) throw TokenizerError(where + ".special_tokens[\"" + name + "\"].ids: must be integers");
      (seen_sequence ? pp.suffix : pp.prefix).push_back(id.get<int32_t>());
    }
  }
  return pp;
}

}  // namespace

PostProcessor PostProcessor::from_json(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return {};
  return parse(j, where);
}

}  // namespace mnemo::engine
