#include <algorithm>
#include <iostream>
#include <numeric>
#include <stdexcept>

#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/cli/kv_flags.h"
#include "engine/serving/engine.h"
#include "engine/model/model.h"
#include "engine/model/op_profile.h"
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
      .value("token-budget", "N",
             "prompt tokens per forward pass: a longer prompt is prefilled in chunks of N, as "
             "mnemod's --token-budget does (larger chunks read the weights fewer times)",
             "512")
      .toggle("stats", "print prefill and decode speed to stderr")
      .toggle("profile", "print where prefill and decode time goes, per operation, to stderr")
      .value("peak-gbps", "GB/s", "memory bandwidth to compare each operation with in --profile (bench/mnemo_membw)", "0");
  add_kv_dtype_flag(f, "bf16");
  if (!f.parse(args)) return 0;
  const kernels::KvDType kv_type = kv_dtype(f);
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
  const int64_t token_budget = f.integer("token-budget", 1, int64_t(1) << 20);

  const auto dir = model_dir(f);
  const auto model = engine::Model::load(dir, weights_residency(f), weight_format(f));
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
  // Through the Engine facade, as the daemon does: one request, streamed.
  engine::EngineOptions eopt;
  eopt.kv_cache_tokens = int64_t(ids.size()) + opt.max_tokens;
  eopt.kv_dtype = kv_type;
  eopt.scheduler.token_budget = token_budget;
  const double peak_gbps = f.number("peak-gbps");
  if (f.on("profile")) engine::prof::enable(true);
  engine::Engine eng(*model, tok, eopt);
  const auto h = eng.submit(engine::Request{ids, opt});
  for (;;) {
    const auto e = h.stream->next();
    if (!e) continue;
    std::cout << e->text << std::flush;
    if (e->kind == engine::StreamEvent::Kind::Error) throw std::runtime_error(e->error);
    if (e->kind != engine::StreamEvent::Kind::Done) continue;
    std::cout << "\n";
    if (f.on("stats")) {
      const auto& st = e->stats;
      const double decode_s = std::accumulate(st.inter_token_seconds.begin(), st.inter_token_seconds.end(), 0.0);
      std::cerr << "prompt " << st.prompt_tokens << " tokens, first token after " << st.ttft_seconds << " s ("
                << double(st.prompt_tokens) / std::max(1e-9, st.ttft_seconds - st.queue_seconds) << " tok/s prefill); "
                << st.generated_tokens << " tokens generated";
      if (st.inter_token_seconds.size() > 0)
        std::cerr << ", " << double(st.inter_token_seconds.size()) / decode_s << " tok/s decode";
      std::cerr << "; finish: " << e->finish_reason << "; KV " << kernels::kv_dtype_name(kv_type) << " ("
                << eng.kv_bytes_per_token() << " bytes per token)\n";
    }
    if (f.on("profile")) {
      namespace prof = engine::prof;
      const auto& st = e->stats;
      const auto snap = prof::snapshot();
      const auto ns = [](double s) { return int64_t(s * 1e9); };
      const double decode_s = std::accumulate(st.inter_token_seconds.begin(), st.inter_token_seconds.end(), 0.0);
      std::cerr << "prefill (" << st.prompt_tokens << " tokens):\n"
                << prof::table(snap, prof::Phase::Prefill, peak_gbps, ns(st.ttft_seconds - st.queue_seconds))
                << "decode (" << st.inter_token_seconds.size() << " tokens; other: the wall time between tokens no op"
                << " accounts for):\n"
                << prof::table(snap, prof::Phase::Decode, peak_gbps, ns(decode_s));
    }
    break;
  }
  return 0;
}

}  // namespace mnemo::cli
