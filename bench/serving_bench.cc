// The Engine under concurrency: throughput, inter-token latency (mean, p99)
// and time to first token at 1, 4 and 16 concurrent requests, and the share
// of each step spent outside the forward pass (scheduling, sampling,
// streaming), against DESIGN.md's 2% target.
// Then time to first token with and without a prefix-cache hit on a long
// shared prefix. Medians of --reps runs.
//   mnemo_serving_bench [--models DIR] [--json PATH] [--tokens N] [--prompt N] [--reps R] [--prefix N]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "bench/report.h"
#include "kernels/cpu/parallel.h"
#include "engine/model/generator.h"
#include "engine/serving/engine.h"

namespace {

namespace fs = std::filesystem;
using namespace mnemo;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}


double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

struct Ttft {
  double seconds = 0;
  int64_t cached = 0;
};

// Submits one request and waits for its first token.
Ttft first_token(engine::Engine& eng, std::vector<int32_t> prompt, uint64_t salt) {
  engine::Request r;
  r.prompt = std::move(prompt);
  r.options.max_tokens = 1;
  r.options.ignore_eos = true;
  r.cache_salt = salt;
  auto h = eng.submit(std::move(r));
  for (;;) {
    auto e = h.stream->next();
    if (!e) continue;
    if (e->kind == engine::StreamEvent::Kind::Error) throw std::runtime_error(e->error);
    if (e->kind == engine::StreamEvent::Kind::Done) return {e->stats.ttft_seconds, e->stats.cached_tokens};
  }
}

// Time to first token for a prompt that shares a long prefix with an earlier
// request (a prefix-cache hit) against the same prompt under a fresh salt
// (nothing cached), alternating, reps times each.
nlohmann::json prefix_hit_section(const engine::Model& model, const engine::Tokenizer& tok, int prefix_len, int reps) {
  engine::EngineOptions opt;
  opt.scheduler.token_budget = 512;
  engine::Engine eng(model, tok, opt);
  std::vector<int32_t> prefix;
  for (int j = 0; j < prefix_len; ++j) prefix.push_back(int32_t((j * 7919 + 13) % 31000));
  first_token(eng, prefix, 1);  // primes the cache under salt 1
  std::vector<double> cold, warm;
  int64_t cached = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<int32_t> p = prefix;
    for (int j = 0; j < 16; ++j) p.push_back(int32_t((r * 131 + j * 17) % 31000));
    cold.push_back(first_token(eng, p, 1000 + uint64_t(r)).seconds);
    const Ttft w = first_token(eng, p, 1);
    warm.push_back(w.seconds);
    cached = w.cached;
  }
  bench::Table t({"prefix tokens", "cold TTFT ms (median)", "hit TTFT ms (median)", "cached tokens", "speed-up",
                  "target"});
  const double c = median(cold), w = median(warm);
  t.add({prefix_len, 1e3 * c, 1e3 * w, cached, c / w, ">= 10x"});
  std::printf("\nprefix-cache hit, %d reps each, alternating\n\n", reps);
  t.print();
  return t.to_json();
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path models = bench::flag(argc, argv, "--models", std::string(MNEMO_BENCH_DIR) + "/models");
  const std::string json_path = bench::flag(argc, argv, "--json", std::string(MNEMO_BENCH_DIR) + "/serving_bench.json");
  const int gen_tokens = std::stoi(bench::flag(argc, argv, "--tokens", "32"));
  const int prompt_len = std::stoi(bench::flag(argc, argv, "--prompt", "64"));
  const int reps = std::stoi(bench::flag(argc, argv, "--reps", "3"));
  const int prefix_len = std::stoi(bench::flag(argc, argv, "--prefix", "2000"));
  std::printf("load average before: %s (2 cores)\n", bench::loadavg().c_str());

  engine::GeneratorOptions g;  // the 123M model of engine_bench
  g.hidden = 768, g.layers = 12, g.heads = 12, g.kv_heads = 12, g.intermediate = 2048, g.vocab = 32000;
  g.dtype = kernels::DType::BF16, g.seed = 2;
  const fs::path dir = models / "llama-123M-bf16";
  if (!fs::exists(dir / "config.json")) engine::generate_model(g, dir);
  const auto model = engine::Model::load(dir);
  const auto tok = engine::Tokenizer::load(dir / "tokenizer.json");

  bench::Table table({"concurrent", "tokens/s", "ratio to 1", "mean ITL ms", "p99 ITL ms", "mean TTFT ms",
                      "step overhead %", "target %", "steps"});
  double base = 0;
  for (int n : {1, 4, 16}) {
    std::vector<double> tps_v, mean_itl, p99_itl, mean_ttft, overhead;
    int64_t steps = 0;
    for (int rep = 0; rep < reps; ++rep) {
      engine::EngineOptions opt;
      opt.scheduler.token_budget = 512;
      engine::Engine eng(*model, tok, opt);
      std::vector<engine::RequestHandle> hs;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) {
        engine::Request r;
        for (int j = 0; j < prompt_len; ++j) r.prompt.push_back(int32_t((i * 7919 + j * 104729 + rep) % 31000));
        r.options.max_tokens = gen_tokens;
        r.options.ignore_eos = true;
        hs.push_back(eng.submit(std::move(r)));
      }
      std::vector<double> itl, ttft;
      int64_t generated = 0;
      for (auto& h : hs)
        for (;;) {
          auto e = h.stream->next();
          if (!e || e->kind == engine::StreamEvent::Kind::Token) continue;
          itl.insert(itl.end(), e->stats.inter_token_seconds.begin(), e->stats.inter_token_seconds.end());
          ttft.push_back(e->stats.ttft_seconds);
          generated += e->stats.generated_tokens;
          break;
        }
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto c = eng.counters();
      tps_v.push_back(double(generated) / wall);
      mean_itl.push_back(1e3 * std::accumulate(itl.begin(), itl.end(), 0.0) / double(std::max<size_t>(1, itl.size())));
      p99_itl.push_back(1e3 * percentile(itl, 0.99));
      mean_ttft.push_back(1e3 * std::accumulate(ttft.begin(), ttft.end(), 0.0) / double(ttft.size()));
      overhead.push_back(100.0 * (c.step_seconds - c.forward_seconds) / c.step_seconds);
      steps = c.steps;
    }
    const double tps = median(tps_v);
    if (n == 1) base = tps;
    table.add({n, tps, tps / base, median(mean_itl), median(p99_itl), median(mean_ttft), median(overhead), 2, steps});
  }
  std::printf("\nllama-123M-bf16, %d threads, prompts of %d tokens, %d generated each, medians of %d runs\n\n",
              kernels::cpu::num_threads(), prompt_len, gen_tokens, reps);
  table.print();
  const nlohmann::json prefix = prefix_hit_section(*model, tok, prefix_len, reps);
  std::printf("load average after: %s\n", bench::loadavg().c_str());
  bench::write_json(json_path, {{"rows", table.to_json()}, {"prefix_hit", prefix}, {"reps", reps}, {"prompt_tokens", prompt_len}, {"generated_tokens", gen_tokens}});
  return 0;
}
