// Tokenizer throughput: encode ~100 KB of English (the bundled corpus,
// repeated) with each real tokenizer.json, one thread; also load and BPE
// training times. Prints a Markdown table and writes JSON.
//   mnemo_tokenizer_bench [--fixtures DIR] [--json PATH]
// DIR holds llama3.json, qwen3.json, llama2.json (the build tree unpacks them
// to tests/engine/tokenizer/tokenizers).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bench/report.h"
#include "engine/tokenizer/bpe_trainer.h"
#include "engine/tokenizer/bundled_corpus.h"
#include "engine/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median_ms(int runs, const std::function<void()>& fn) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(ms_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using mnemo::engine::Tokenizer;
  const std::filesystem::path fixtures =
      mnemo::bench::flag(argc, argv, "--fixtures", std::string(MNEMO_BENCH_DIR) + "/../tests/engine/tokenizer/tokenizers");
  std::string text;
  while (text.size() < 100 * 1024) text += mnemo::engine::bundled_corpus();
  text.resize(100 * 1024);
  // A cold-cache measure on text that repeats nothing: the corpus once.
  const std::string once(mnemo::engine::bundled_corpus());

  mnemo::bench::Table table({"tokenizer", "load ms", "encode 100 KB first ms", "encode 100 KB warm ms", "MB/s warm",
                             "tokens", "encode corpus once (cold) ms", "decode 100 KB ms"});
  for (const char* name : {"llama3", "qwen3", "llama2"}) {
    const auto path = fixtures / (std::string(name) + ".json");
    if (!std::filesystem::exists(path)) {
      std::fprintf(stderr, "skipping %s: %s not found\n", name, path.c_str());
      continue;
    }
    auto t0 = Clock::now();
    const auto tok = Tokenizer::load(path);
    const double load = ms_since(t0);
    double cold_once;
    {
      const auto cold_tok = Tokenizer::load(path);
      t0 = Clock::now();
      (void)cold_tok.encode(once, false);
      cold_once = ms_since(t0);  // before the tokenizer's (slow) destruction
    }
    t0 = Clock::now();
    const auto ids = tok.encode(text, false);
    const double first = ms_since(t0);
    const double warm = median_ms(5, [&] { (void)tok.encode(text, false); });
    const double decode = median_ms(5, [&] { (void)tok.decode(ids); });
    table.add({name, load, first, warm, text.size() / 1e3 / warm, static_cast<int64_t>(ids.size()), cold_once, decode});
  }
  for (int vocab : {512, 4096, 32000}) {
    const double train = median_ms(3, [&] {
      (void)mnemo::engine::train_byte_level_bpe(mnemo::engine::bundled_corpus(), vocab, {"<|begin_of_text|>", "<|eot_id|>"},
                                                "<|begin_of_text|>");
    });
    table.add({"train V=" + std::to_string(vocab), train, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr});
  }
  table.print();
  const std::string json_path = mnemo::bench::flag(argc, argv, "--json", std::string(MNEMO_BENCH_DIR) + "/tokenizer_bench.json");
  mnemo::bench::write_json(json_path, table.to_json());
  return 0;
}
