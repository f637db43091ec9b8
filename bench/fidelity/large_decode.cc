#include "bench/fidelity/large_decode.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <filesystem>
#include <numeric>
#include <random>
#include <vector>

#include "bench/fidelity/recall.h"
#include "bench/report.h"
#include "engine/model/generator.h"
#include "engine/model/model.h"

namespace mnemo::bench::fidelity {

namespace {

// Fills the last `n` appended slots of every layer with random K,V.
void fill_random(engine::kv::KvCacheManager& kv, engine::kv::SeqId s, int64_t n) {
  const auto& c = kv.config();
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 0.5f);
  std::vector<float> k(size_t(n * c.kv_heads * c.head_dim)), v(k.size());
  for (auto& x : k) x = g(rng);
  for (auto& x : v) x = g(rng);
  for (int64_t l = 0; l < c.layers; ++l) kv.write(s, l, n, k.data(), v.data());
}

// One conversation turn on a fork of `s`: a `prompt`-token user message
// prefilled, then `decode` tokens generated; seconds for the whole turn.
double turn_seconds(const engine::Model& model, engine::kv::KvCacheManager& kv, engine::kv::SeqId s, int64_t prompt,
                    int decode) {
  const auto f = kv.fork(s);
  std::vector<int32_t> msg(static_cast<size_t>(prompt));
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = int32_t(200 + i);
  const auto t0 = std::chrono::steady_clock::now();
  if (!kv.append(f, msg)) throw std::runtime_error("large decode: no room for a turn");
  engine::Model::BatchItem item;
  item.tokens = msg;
  item.paged = &kv;
  item.seq = f;
  (void)model.forward_batch(std::span(&item, 1));
  kv.commit(f);
  int32_t t = 12;
  for (int i = 0; i < decode; ++i) {
    if (!kv.append(f, std::span(&t, 1))) throw std::runtime_error("large decode: no room for a turn");
    item.tokens = std::span(&t, 1);
    (void)model.forward_batch(std::span(&item, 1));
    kv.commit(f);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  kv.free(f);
  return secs;
}

}  // namespace

nlohmann::json large_decode_report(int64_t history, double ratio) {
  engine::GeneratorOptions o;  // TinyLlama-1.1B's shapes, as mnemo_engine_bench
  o.hidden = 2048, o.layers = 22, o.heads = 32, o.kv_heads = 4, o.intermediate = 5632;
  o.vocab = 32000, o.dtype = kernels::DType::BF16, o.seed = 1, o.max_position = 65536;
  const std::filesystem::path dir = std::filesystem::path(MNEMO_BENCH_DIR) / "models/llama-1.1B-bf16-64k";
  if (!std::filesystem::exists(dir / "config.json")) {
    std::printf("generating %s ...\n", dir.string().c_str());
    std::fflush(stdout);
    engine::generate_model(o, dir);
  }
  const auto model = engine::Model::load(dir);
  const auto& mc = model->config();
  engine::kv::KvConfig kc;
  kc.layers = mc.num_layers, kc.kv_heads = mc.num_kv_heads, kc.head_dim = mc.head_dim, kc.block_size = 16;
  kc.bytes_budget = kc.layers * kc.bytes_per_block() * (history / kc.block_size + 64);
  engine::kv::KvCacheManager kv(kc);
  const auto s = kv.create();
  std::vector<int32_t> tokens(static_cast<size_t>(history));
  std::iota(tokens.begin(), tokens.end(), 0);
  for (auto& t : tokens) t = 100 + t % 30000;
  if (!kv.append(s, tokens)) throw std::runtime_error("large decode: KV pool too small");
  fill_random(kv, s, history);
  kv.commit(s);
  const int steps = 12;
  const double full = decode_seconds_per_token(*model, kv, s, steps);
  const double full_turn = turn_seconds(*model, kv, s, 64, 16);
  // Compaction: the first 128 slots and the most recent ones (timing does not
  // depend on which slots are kept, only how many).
  const int64_t keep = int64_t(double(history) / ratio);
  std::vector<int32_t> slots;
  for (int64_t i = 0; i < 128; ++i) slots.push_back(int32_t(i));
  for (int64_t i = history - (keep - 128); i < history; ++i) slots.push_back(int32_t(i));
  const std::vector<std::vector<int32_t>> per_head(size_t(mc.num_kv_heads), slots);
  for (int64_t l = 0; l < mc.num_layers; ++l)
    if (!kv.compact(s, l, per_head)) throw std::runtime_error("large decode: compaction found no room");
  const double compressed = decode_seconds_per_token(*model, kv, s, steps);
  const double compressed_turn = turn_seconds(*model, kv, s, 64, 16);
  const double weights = double(model->weights().matrix_bytes);
  const double kv_token = double(kc.bytes_per_block()) * double(kc.layers) / double(kc.block_size);
  const double predicted = (weights + kv_token * double(history)) / (weights + kv_token * double(keep));
  const double measured = full / compressed;
  bench::Table t({"history", "compression", "weights_mib", "kv_full_mib", "kv_kept_mib", "decode_full_ms",
                  "decode_compressed_ms", "speedup", "predicted_by_bytes", "share_of_predicted", "target",
                  "turn_full_s", "turn_compressed_s"});
  t.add({history, ratio, weights / (1 << 20), kv_token * double(history) / (1 << 20),
         kv_token * double(keep) / (1 << 20), 1e3 * full, 1e3 * compressed, measured, predicted,
         measured / predicted, ">= 0.8", full_turn, compressed_turn});
  std::printf("\nDecode with a %lld-token history on %s (median of %d steps; a turn = a 64-token message "
              "prefilled + 16 tokens generated):\n",
              (long long)history, dir.filename().string().c_str(), steps);
  t.print();
  return t.to_json();
}

}  // namespace mnemo::bench::fidelity
