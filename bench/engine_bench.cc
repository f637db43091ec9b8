// Prefill and decode speed of the CPU engine on generated Llama models of
// about 1.1B and 123M parameters (BF16), at 1 and 2 threads, beside this
// machine's measured bandwidth, the decode roofline and llama.cpp's numbers
// from DESIGN.md.
//   mnemo_engine_bench [--models DIR] [--json PATH] [--reps N] [--prefill N] [--decode N] [--only small|large]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/membw.h"
#include "bench/report.h"
#include "kernels/cpu/parallel.h"
#include "engine/model/generator.h"
#include "engine/model/model.h"

extern "C" void openblas_set_num_threads(int);

namespace {

namespace fs = std::filesystem;
using namespace mnemo;

struct Spec {
  std::string name;
  engine::GeneratorOptions gen;
  double llamacpp_decode_2t, llamacpp_prefill_2t;  // DESIGN.md, 2 threads
};

std::vector<Spec> specs() {
  engine::GeneratorOptions large;  // TinyLlama-1.1B's shapes
  large.hidden = 2048, large.layers = 22, large.heads = 32, large.kv_heads = 4, large.intermediate = 5632;
  large.vocab = 32000, large.dtype = kernels::DType::BF16, large.seed = 1;
  engine::GeneratorOptions small;  // GPT-2-small-sized Llama
  small.hidden = 768, small.layers = 12, small.heads = 12, small.kv_heads = 12, small.intermediate = 2048;
  small.vocab = 32000, small.dtype = kernels::DType::BF16, small.seed = 2;
  return {{"llama-1.1B-bf16", large, 27, 280}, {"llama-123M-bf16", small, 260, 2900}};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}


double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path models = bench::flag(argc, argv, "--models", std::string(MNEMO_BENCH_DIR) + "/models");
  const std::string json_path = bench::flag(argc, argv, "--json", std::string(MNEMO_BENCH_DIR) + "/engine_bench.json");
  const int reps = std::stoi(bench::flag(argc, argv, "--reps", "5"));
  const int prefill_n = std::stoi(bench::flag(argc, argv, "--prefill", "512"));
  const int decode_n = std::stoi(bench::flag(argc, argv, "--decode", "32"));
  const std::string only = bench::flag(argc, argv, "--only", "");
  std::printf("load average before: %s (2 cores; other work on the machine skews results)\n", bench::loadavg().c_str());

  const double bw[3] = {0, bench::measure_triad_gbps(1), bench::measure_triad_gbps(2)};
  std::printf("STREAM triad: %.1f GB/s with 1 thread, %.1f GB/s with 2\n\n", bw[1], bw[2]);

  bench::Table table({"model", "threads", "prefill tok/s", "llama.cpp prefill (2t)", "prefill vs llama.cpp",
                      "decode tok/s", "roofline tok/s", "% of roofline", "target %", "llama.cpp decode (2t)",
                      "GB/s", "bytes/token (MB)"});
  for (const Spec& s : specs()) {
    if (!only.empty() && s.name.find(only == "small" ? "123M" : "1.1B") == std::string::npos) continue;
    const fs::path dir = models / s.name;
    if (!fs::exists(dir / "config.json")) {
      std::printf("generating %s into %s ...\n", s.name.c_str(), dir.string().c_str());
      engine::generate_model(s.gen, dir);
    }
    const auto model = engine::Model::load(dir);
    const auto& w = model->weights();
    // Decode reads every matrix once, except the embedding (one row).
    const auto bytes = [](const kernels::MatrixView& m) { return double(m.rows) * double(kernels::row_bytes(m.dtype, m.cols)); };
    const double tied = w.lm_head.data == w.embed.data ? bytes(w.embed) : 0;
    const double per_token = double(w.matrix_bytes) - bytes(w.embed) + tied;

    std::vector<int32_t> prompt(static_cast<size_t>(prefill_n));
    for (int i = 0; i < prefill_n; ++i) prompt[size_t(i)] = int32_t((i * 7919 + 13) % (model->config().vocab_size - 16));
    for (int threads : {1, 2}) {
      kernels::cpu::set_num_threads(threads);
      openblas_set_num_threads(threads);
      std::vector<double> pre, dec;
      for (int r = 0; r < reps; ++r) {
        auto cache = model->new_cache(prefill_n + decode_n);
        auto t0 = std::chrono::steady_clock::now();
        auto logits = model->forward(prompt, cache);
        pre.push_back(prefill_n / seconds_since(t0));
        // Decode after a short context so KV reads stay a small share.
        auto dcache = model->new_cache(16 + decode_n);
        model->forward(std::span(prompt).first(16), dcache);
        int32_t tok = 1;
        t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < decode_n; ++i) {
          logits = model->forward(std::span(&tok, 1), dcache);
          tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        }
        dec.push_back(decode_n / seconds_since(t0));
      }
      const double p = median(pre), d = median(dec), roof = bw[threads] * 1e9 / per_token;
      table.add({s.name, threads, p, s.llamacpp_prefill_2t, threads == 2 ? nlohmann::json(p / s.llamacpp_prefill_2t) : nlohmann::json("-"),
                 d, roof, 100.0 * d / roof, 85, s.llamacpp_decode_2t, d * per_token / 1e9, per_token / 1e6});
      std::printf("%s, %d thread(s): prefill %.1f tok/s, decode %.2f tok/s\n", s.name.c_str(), threads, p, d);
    }
  }
  std::printf("\n");
  table.print();
  std::printf("load average after: %s\n", bench::loadavg().c_str());
  bench::write_json(json_path, {{"bandwidth_gbps", {{"1", bw[1]}, {"2", bw[2]}}}, {"rows", table.to_json()},
                                {"reps", reps}, {"prefill_tokens", prefill_n}, {"decode_tokens", decode_n}});
  return 0;
}
