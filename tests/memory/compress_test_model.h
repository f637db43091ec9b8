#pragma once
// A small generated model (f32, 2 layers, 2 KV heads of 16) and a paged cache
// shaped for it, shared by the compression tests.
#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/model/generator.h"
#include "engine/model/model.h"

namespace mnemo::memory::compress::testing {

inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("mnemo_compress_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d;
}

// `mnemo model new --hidden 64 --layers 2 --heads 4 --kv-heads 2 --vocab 512 --dtype f32`.
// One thread: on a model this small a parallel region is all barrier, and on
// a shared, loaded machine those waits made the suite a hundred times slower.
inline void write_model(const std::filesystem::path& dir) {
  omp_set_num_threads(1);
  engine::GeneratorOptions o;
  o.hidden = 64, o.layers = 2, o.heads = 4, o.kv_heads = 2, o.intermediate = 128, o.vocab = 512, o.seed = 7;
  o.dtype = kernels::DType::F32;
  engine::generate_model(o, dir);
}

struct ModelFixture {
  std::filesystem::path dir = fresh_dir("model");
  std::unique_ptr<engine::Model> model;
  ModelFixture() {
    write_model(dir);
    model = engine::Model::load(dir);
  }
  ~ModelFixture() { std::filesystem::remove_all(dir); }
};

inline const engine::Model& model() {
  static ModelFixture f;
  return *f.model;
}

// A paged cache for the model with `blocks_per_layer` blocks of 16 tokens.
inline engine::kv::KvCacheManager make_cache(const engine::Model& m, int64_t blocks_per_layer) {
  engine::kv::KvConfig k;
  k.layers = m.config().num_layers;
  k.kv_heads = m.config().num_kv_heads;
  k.head_dim = m.config().head_dim;
  k.block_size = 16;
  k.dtype = engine::kv::KvDType::F32;  // the tests check scores of the exact keys they write
  k.bytes_budget = blocks_per_layer * k.layers * k.bytes_per_block();
  return engine::kv::KvCacheManager(k);
}

// A deterministic token sequence with some repetition (so attention has structure).
inline std::vector<int32_t> history(int64_t n, int seed = 1) {
  std::vector<int32_t> h;
  for (int64_t j = 0; j < n; ++j) h.push_back(int32_t((seed * 131 + j * 17 + (j * j) % 97 + (j / 50) * 7) % 509) + 1);
  return h;
}

}  // namespace mnemo::memory::compress::testing
