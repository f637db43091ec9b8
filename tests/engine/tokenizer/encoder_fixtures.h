// Tokenizers of generated models and the chat-template families the
// prompt tests run under (shared by those tests).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <map>
#include <ostream>
#include <string>

#include "engine/model/generator.h"
#include "engine/tokenizer/prompt_encoder.h"

namespace mnemo::engine {

// A generated model's tokenizer per architecture, made once.
inline const Tokenizer& tokenizer(const std::string& arch) {
  static std::map<std::string, Tokenizer> made;
  if (auto it = made.find(arch); it != made.end()) return it->second;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mnemo-prompt-" + arch + "-" + std::to_string(::getpid()));
  GeneratorOptions o;
  o.arch = arch;
  o.hidden = 32, o.layers = 1, o.heads = 2, o.kv_heads = 1, o.intermediate = 32, o.vocab = 600;
  generate_model(o, dir);
  Tokenizer tok = Tokenizer::load(dir / "tokenizer.json");
  std::filesystem::remove_all(dir);
  return made.emplace(arch, std::move(tok)).first->second;
}

inline ChatTemplate custom_template() {
  return ChatTemplate::from_json(nlohmann::json::parse(R"({
    "name": "custom-chatml",
    "system": {"prefix": "<|im_start|>system\n", "suffix": "<|im_end|>\n"},
    "user": {"prefix": "<|im_start|>user\n", "suffix": "<|im_end|>\n"},
    "assistant": {"prefix": "<|im_start|>assistant\n", "suffix": "<|im_end|>\n"},
    "tool": {"prefix": "<|im_start|>tool\n", "suffix": "<|im_end|>\n"},
    "generation_prompt": "<|im_start|>assistant\n",
    "tools": {"prefix": "\nTools:\n", "suffix": "\n"},
    "tool_call": {"prefix": "<tool_call>", "suffix": "</tool_call>"},
    "stop": ["<|im_end|>"]
  })"),
                                 "custom-chatml.json");
}

struct Family {
  std::string name, arch;
};
inline void PrintTo(const Family& f, std::ostream* os) { *os << f.name; }

inline PromptEncoder encoder_for(const Family& f) {
  const Tokenizer& tok = tokenizer(f.arch);
  if (f.name == "custom") return PromptEncoder(custom_template(), tok);
  return PromptEncoder(ChatTemplate::builtin(f.name), tok);
}

inline const Family kFamilies[] = {{"llama3", "llama"}, {"llama3.1", "llama"}, {"chatml", "qwen2"},
                                   {"mistral", "mistral"}, {"custom", "qwen2"}};

}  // namespace mnemo::engine
