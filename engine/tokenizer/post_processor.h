// tokenizer.json "post_processor" for single sequences: the special ids
// that add_special_tokens puts before and after the encoded text.
// TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel and
// Sequence are understood.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mnemo::engine {

struct PostProcessor {
  std::vector<int32_t> prefix, suffix;

  static PostProcessor from_json(const nlohmann::json& j, const std::string& where);  // null: nothing added
};

}  // namespace mnemo::engine
