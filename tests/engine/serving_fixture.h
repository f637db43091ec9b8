#pragma once
// A small generated model shared by the Engine tests, and helpers to submit
// requests and collect their streams.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/generation/generate.h"
#include "engine/model/generator.h"
#include "engine/serving/engine.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine::serving_testing {

struct Fixture {
  std::filesystem::path dir = testing::fresh_dir("serving");
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  Fixture() {
    GeneratorOptions o;
    o.hidden = 64, o.layers = 2, o.heads = 4, o.kv_heads = 2, o.intermediate = 96, o.vocab = 400, o.seed = 3;
    o.dtype = kernels::DType::F32;
    generate_model(o, dir);
    model = Model::load(dir);
    tok = std::make_unique<Tokenizer>(Tokenizer::load(dir / "tokenizer.json"));
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

inline Fixture& fx() {
  static Fixture f;
  return f;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<StreamEvent> logits;
  std::string text, finish;
  RequestStats stats;
  bool error = false;
};

inline Outcome collect(const RequestHandle& h) {
  Outcome o;
  for (;;) {
    auto e = h.stream->next(std::chrono::seconds(60));
    if (!e) {
      o.error = true;
      o.finish = "timeout";
      return o;
    }
    o.text += e->text;
    if (e->kind == StreamEvent::Kind::Token) o.tokens.push_back(e->token);
    if (e->kind == StreamEvent::Kind::Logits) o.logits.push_back(*e);
    if (e->kind == StreamEvent::Kind::Done) {
      o.finish = e->finish_reason;
      o.stats = e->stats;
      return o;
    }
    if (e->kind == StreamEvent::Kind::Error) {
      o.error = true;
      o.finish = e->error;
      return o;
    }
  }
}

// These tests compare the engine against runs through Model::forward's
// contiguous f32 cache (or against cold runs) for equality: f32 KV, so the
// paged cache holds exactly what the reference computes.
// tests/engine/kv_dtype_test.cc covers the bf16 default against f32.
inline EngineOptions exact_kv() {
  EngineOptions o;
  o.kv_dtype = kernels::KvDType::F32;
  return o;
}

// A deterministic prompt of n token ids below 397; seed varies it.
inline std::vector<int32_t> long_prompt(int n, int seed) {
  std::vector<int32_t> p;
  for (int j = 0; j < n; ++j) p.push_back(int32_t((seed * 131 + j * 17 + j * j) % 397));
  return p;
}

// max |a - b| / max |b| over one row.
inline double rel_error(std::span<const float> a, std::span<const float> b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return num / den;
}

inline Request make_request(int i, int max_tokens) {
  Request r;
  for (int j = 0; j < 5 + 3 * i; ++j) r.prompt.push_back(int32_t((i * 31 + j * 7) % 250));
  r.options.max_tokens = max_tokens;
  return r;
}

inline std::vector<int32_t> alone(const Request& r) {
  return generate(*fx().model, *fx().tok, r.prompt, r.options).tokens;
}

}  // namespace mnemo::engine::serving_testing
