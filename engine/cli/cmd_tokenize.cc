#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/tokenizer/tokenizer.h"

namespace mnemo::cli {

int cmd_tokenize(const std::vector<std::string>& args) {
  Flags f("mnemo tokenize [--model DIR] --text TEXT [--special]",
          "Prints the token ids of TEXT as a JSON array.");
  add_model_flags(f);
  f.value("text", "TEXT", "text to encode").toggle("special", "add the model's special tokens (e.g. BOS)");
  if (!f.parse(args)) return 0;
  const std::string text = f.str("text");
  const auto tok = engine::Tokenizer::load(model_dir(f) / "tokenizer.json");
  std::cout << nlohmann::json(tok.encode(text, f.on("special"))).dump() << "\n";
  return 0;
}

int cmd_detokenize(const std::vector<std::string>& args) {
  Flags f("mnemo detokenize [--model DIR] --ids 1,2,3 [--skip-special]", "Prints the text of token ids.");
  add_model_flags(f);
  f.value("ids", "1,2,3", "comma-separated token ids").toggle("skip-special", "leave out special tokens");
  if (!f.parse(args)) return 0;
  const auto ids = parse_id_list("ids", f.str("ids"));
  const auto tok = engine::Tokenizer::load(model_dir(f) / "tokenizer.json");
  for (int32_t id : ids)
    if (id >= tok.vocab_size())
      throw UsageError("--ids: id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(tok.vocab_size()));
  std::cout << tok.decode(ids, f.on("skip-special")) << "\n";
  return 0;
}

}  // namespace mnemo::cli
