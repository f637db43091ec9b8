// The forward pass against the independent PyTorch reference: each golden in
// tests/golden/ names generator arguments; the model is regenerated, checked
// to be byte-identical to the one the reference saw, then run.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <set>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/model/model.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string sha256_of(const fs::path& f) {
  const std::string cmd = "sha256sum '" + f.string() + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::array<char, 65> buf{};
  const size_t n = fread(buf.data(), 1, 64, p);
  pclose(p);
  return std::string(buf.data(), n);
}

double row_rel_err(const float* got, const json& want) {
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double w = want[i].get<double>();
    max_diff = std::max(max_diff, std::fabs(double(got[i]) - w));
    max_abs = std::max(max_abs, std::fabs(w));
  }
  return max_diff / max_abs;
}

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
      worst = std::max(worst, row_rel_err(&logits[size_t(positions[r] * V)], want[r]));
  } else {
    const size_t p = g["prompt_len"].get<size_t>();
    auto logits = model.forward(std::span(tokens).first(p), cache);
    worst = row_rel_err(logits.data(), want[0]);
    for (size_t j = 1; j < want.size(); ++j) {
      logits = model.forward(std::span(tokens).subspan(p + j - 1, 1), cache);
      worst = std::max(worst, row_rel_err(logits.data(), want[j]));
    }
  }
  std::printf("%s (%s): max relative error %.3g (bound %.3g)\n", g["case"].get<std::string>().c_str(), label, worst, tol);
  EXPECT_LE(worst, tol) << label;
}

std::vector<fs::path> goldens() {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(MNEMO_SOURCE_DIR) / "tests" / "golden";
  if (!fs::is_directory(dir)) return out;  // the coverage test then fails
  for (const auto& e : fs::directory_iterator(fs::path(MNEMO_SOURCE_DIR) / "tests" / "golden"))
    if (e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

class Reference : public ::testing::TestWithParam<fs::path> {};

TEST_P(Reference, LogitsMatchWithinTolerance) {
  std::ifstream in(GetParam());
  const json g = json::parse(in);
  const fs::path dir = testing::fresh_dir("golden_" + GetParam().stem().string());
  std::string cmd = std::string(MNEMO_BINARY_DIR) + "/mnemo model new";
  for (const auto& a : g["generator_args"]) cmd += " '" + a.get<std::string>() + "'";
  cmd += " --out '" + dir.string() + "' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (auto it = g["model_files_sha256"].begin(); it != g["model_files_sha256"].end(); ++it)
    ASSERT_EQ(sha256_of(dir / it.key()), it.value().get<std::string>())
        << it.key() << " differs from the model the golden was made with: the generator changed; "
        << "regenerate the goldens (tests/reference/README.md)";

  const auto model = Model::load(dir);
  // Exact keeps all arithmetic in f32 (the reference's own); Fast rounds GEMM
  // inputs to bf16 for BF16 weights and has its own, looser, stated bound.
  const json& tol = g["tolerance"];
  check_logits(*model, g, kernels::cpu::MatmulPrecision::Exact, tol["max_rel_err"].get<double>(), "exact");
  check_logits(*model, g, kernels::cpu::MatmulPrecision::Fast,
               tol.value("max_rel_err_fast", tol["max_rel_err"].get<double>()), "fast");
  kernels::cpu::set_matmul_precision(kernels::cpu::MatmulPrecision::Fast);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Goldens, Reference, ::testing::ValuesIn(goldens()),
                         [](const auto& info) { return info.param.stem().string(); });

TEST(ReferenceSet, CoversEveryArchitectureAndOption) {
  std::set<std::string> seen;
  for (const fs::path& f : goldens()) {
    std::ifstream in(f);
    const json g = json::parse(in);
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
