// The Engine under concurrency: throughput, inter-token latency (mean, p99)
// and time to first token at 1, 4 and 16 concurrent requests, and the share
// of each step spent outside the forward pass (scheduling, sampling,
// streaming), against DESIGN.md's 2% target.
//   mnemo_serving_bench [--models DIR] [--json PATH] [--tokens N] [--prompt N]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "bench/report.h"
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


}  // namespace

int main(int argc, char** argv) {
  const fs::path models = bench::flag(argc, argv, "--models", std::string(MNEMO_BENCH_DIR) + "/models");
  const std::string json_path = bench::flag(argc, argv, "--json", std::string(MNEMO_BENCH_DIR) + "/serving_bench.json");
  const int gen_tokens = std::stoi(bench::flag(argc, argv, "--tokens", "32"));
  const int prompt_len = std::stoi(bench::flag(argc, argv, "--prompt", "64"));
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
    engine::EngineOptions opt;
    opt.scheduler.token_budget = 512;
    engine::Engine eng(*model, tok, opt);
    std::vector<engine::RequestHandle> hs;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      engine::Request r;
      for (int j = 0; j < prompt_len; ++j) r.prompt.push_back(int32_t((i * 7919 + j * 104729) % 31000));
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
    const double tps = double(generated) / wall;
    if (n == 1) base = tps;
    table.add({n, tps, tps / base, 1e3 * std::accumulate(itl.begin(), itl.end(), 0.0) / double(std::max<size_t>(1, itl.size())),
               1e3 * percentile(itl, 0.99), 1e3 * std::accumulate(ttft.begin(), ttft.end(), 0.0) / double(ttft.size()),
               100.0 * (c.step_seconds - c.forward_seconds) / c.step_seconds, 2, c.steps});
  }
  std::printf("\nllama-123M-bf16, %d threads, prompts of %d tokens, %d generated each\n\n", omp_get_max_threads(),
              prompt_len, gen_tokens);
  table.print();
  std::printf("load average after: %s\n", bench::loadavg().c_str());
  bench::write_json(json_path, {{"rows", table.to_json()}, {"prompt_tokens", prompt_len}, {"generated_tokens", gen_tokens}});
  return 0;
}
