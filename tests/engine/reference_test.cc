// The forward pass against the independent PyTorch reference: each golden in
// tests/golden/ names generator arguments; the model is regenerated, checked
// to be byte-identical to the one the reference saw, then run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/model/model.h"
#include "tests/engine/golden_model.h"

namespace mnemo::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void check_logits(const Model& model, const json& g, kernels::cpu::MatmulPrecision precision, double tol,
                  const char* label) {
  kernels::cpu::set_matmul_precision(precision);
  const int64_t V = model.config().vocab_size;
  const std::vector<int32_t> tokens = g["tokens"].get<std::vector<int32_t>>();
  const json& want = g["logits"];
  double worst = 0;
  KvCache cache = model.new_cache(4);
  if (g["mode"] == "forward") {
    const auto logits = model.forward(tokens, cache, true);
    const auto positions = g["logits_positions"].get<std::vector<int64_t>>();
    ASSERT_EQ(positions.size(), want.size());
    for (size_t r = 0; r < positions.size(); ++r)
      worst = std::max(worst, testing::row_rel_err(&logits[size_t(positions[r] * V)], want[r]));
  } else {
    const size_t p = g["prompt_len"].get<size_t>();
    auto logits = model.forward(std::span(tokens).first(p), cache);
    worst = testing::row_rel_err(logits.data(), want[0]);
    for (size_t j = 1; j < want.size(); ++j) {
      logits = model.forward(std::span(tokens).subspan(p + j - 1, 1), cache);
      worst = std::max(worst, testing::row_rel_err(logits.data(), want[j]));
    }
  }
  std::printf("%s (%s): max relative error %.3g (bound %.3g)\n", g["case"].get<std::string>().c_str(), label, worst, tol);
  EXPECT_LE(worst, tol) << label;
}

class Reference : public ::testing::TestWithParam<fs::path> {};

TEST_P(Reference, LogitsMatchWithinTolerance) {
  const json g = testing::read_golden(GetParam());
  const auto model = testing::load_golden_model(g, "golden_" + GetParam().stem().string(),
                                                "regenerate the goldens (tests/reference/README.md)");
  ASSERT_TRUE(model);

  // Exact keeps all arithmetic in f32 (the reference's own); Fast rounds GEMM
  // inputs to bf16 for BF16 weights and has its own, looser, stated bound.
  const json& tol = g["tolerance"];
  check_logits(*model, g, kernels::cpu::MatmulPrecision::Exact, tol["max_rel_err"].get<double>(), "exact");
  check_logits(*model, g, kernels::cpu::MatmulPrecision::Fast,
               tol.value("max_rel_err_fast", tol["max_rel_err"].get<double>()), "fast");
  kernels::cpu::set_matmul_precision(kernels::cpu::MatmulPrecision::Fast);
}

INSTANTIATE_TEST_SUITE_P(Goldens, Reference, ::testing::ValuesIn(testing::goldens_in()),
                         [](const auto& info) { return info.param.stem().string(); });

TEST(ReferenceSet, CoversEveryArchitectureAndOption) {
  std::set<std::string> seen;
  for (const fs::path& f : testing::goldens_in()) {
    const json g = testing::read_golden(f);
    std::string args;
    for (const auto& a : g["generator_args"]) args += a.get<std::string>() + " ";
    for (const char* opt : {"--arch llama", "--arch qwen2", "--arch mistral", "--dtype f32", "--dtype f16",
                            "--dtype bf16", "--shards", "--tie", "--rope-scaling llama3", "--head-dim", "--sliding-window"})
      if (args.find(opt) != std::string::npos) seen.insert(opt);
    if (g["mode"] == "decode") seen.insert("decode");
  }
  EXPECT_EQ(seen.size(), 12u) << "golden set lacks some architecture or option";
}

}  // namespace
}  // namespace mnemo::engine
