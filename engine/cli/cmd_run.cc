#include <iostream>

#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/generation/generate.h"
#include "engine/model/model.h"
#if __has_include("engine/tokenizer/chat_template.h")
#include "engine/tokenizer/chat_template.h"
#define MNEMO_HAS_CHAT 1
#endif
#include "engine/tokenizer/tokenizer.h"

namespace mnemo::cli {

int cmd_run(const std::vector<std::string>& args) {
  Flags f("mnemo run [--model DIR] --prompt TEXT [--chat] [flags]",
          "Generates text from a prompt and streams it to stdout. With --chat the prompt is a user\n"
          "message rendered with the model's chat template.");
  add_model_flags(f);
  f.value("prompt", "TEXT", "the prompt")
      .toggle("chat", "treat the prompt as a chat message (uses the model's chat template)")
      .value("system", "TEXT", "system message, with --chat")
      .value("chat-template", "FILE", "chat template file in Mnemo's format (docs/chat-template-format.md)")
      .value("max-tokens", "N", "most tokens to generate", "128")
      .value("temperature", "T", "sampling temperature; 0 is greedy", "0.8")
      .value("top-k", "K", "keep the K most likely tokens; 0 is off", "0")
      .value("top-p", "P", "nucleus sampling mass; 1 is off", "1")
      .value("min-p", "P", "drop tokens below P times the top probability; 0 is off", "0")
      .value("repetition-penalty", "R", "penalty for tokens already seen; 1 is off", "1")
      .value("seed", "S", "sampling seed", "0")
      .value("stop", "TEXT", "stop when this text is generated")
      .toggle("stats", "print prefill and decode speed to stderr");
  if (!f.parse(args)) return 0;
  apply_threads(f);
  engine::GenerateOptions opt;
  opt.max_tokens = int32_t(f.integer("max-tokens", 0, 1 << 20));
  opt.sampling.temperature = float(f.number("temperature"));
  opt.sampling.top_k = int32_t(f.integer("top-k", 0, 1 << 24));
  opt.sampling.top_p = float(f.number("top-p"));
  opt.sampling.min_p = float(f.number("min-p"));
  opt.sampling.repetition_penalty = float(f.number("repetition-penalty"));
  opt.sampling.seed = uint64_t(f.integer("seed", 0, INT64_MAX));
  try {
    opt.sampling.validate();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (f.has("stop")) opt.stop_strings.push_back(f.str("stop"));
  const std::string prompt = f.str("prompt");

  const auto dir = model_dir(f);
  const auto model = engine::Model::load(dir);
  const auto tok = engine::Tokenizer::load(dir / "tokenizer.json");
  std::vector<int32_t> ids;
  if (f.on("chat") || f.has("chat-template")) {
#ifndef MNEMO_HAS_CHAT
    throw UsageError("chat templates are not built in yet");
#else
    const auto tmpl = f.has("chat-template") ? engine::ChatTemplate::from_file(f.str("chat-template"))
                                             : engine::ChatTemplate::for_model(dir);
    std::vector<engine::ChatMessage> msgs;
    auto message = [](std::string role, std::string content) {
      engine::ChatMessage m;
      m.role = std::move(role);
      m.content = std::move(content);
      return m;
    };
    if (f.has("system")) msgs.push_back(message("system", f.str("system")));
    msgs.push_back(message("user", prompt));
    // The rendered text carries its own special tokens (BOS included).
    ids = tok.encode(tmpl.render(msgs, nlohmann::ordered_json::array(), true), false);
    for (const std::string& s : tmpl.stop_tokens())
      if (auto id = tok.token_id(s)) opt.stop_ids.push_back(*id);
#endif
  } else {
    ids = tok.encode(prompt, true);
  }
  if (ids.empty()) throw UsageError("--prompt encodes to no tokens");
  if (int64_t(ids.size()) + opt.max_tokens > model->config().max_position_embeddings)
    std::cerr << "mnemo: warning: prompt plus --max-tokens exceeds the model's max_position_embeddings\n";
  const auto r = engine::generate(*model, tok, ids, opt, [](std::string_view s) { std::cout << s << std::flush; });
  std::cout << "\n";
  if (f.on("stats")) {
    std::cerr << "prompt " << ids.size() << " tokens in " << r.prefill_seconds << " s ("
              << double(ids.size()) / r.prefill_seconds << " tok/s); generated " << r.tokens.size() << " tokens in "
              << r.decode_seconds << " s (" << double(r.tokens.size()) / std::max(1e-9, r.decode_seconds)
              << " tok/s); finish: " << r.finish_reason << "\n";
  }
  return 0;
}

}  // namespace mnemo::cli
