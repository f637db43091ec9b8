// Mean-pooled hidden states: against the PyTorch reference
// (tests/reference/hidden_reference.py, goldens in tests/golden/hidden/), and
// the contracts: chunking does not change the mean, bad input is refused,
// concurrent callers (beside a forward pass, as in the daemon) agree with a
// serial run.
#include <gtest/gtest.h>
#include "kernels/cpu/parallel.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "engine/model/hidden_states.h"
#include "engine/model/model.h"
#include "kernels/cpu/matmul.h"
#include "tests/engine/golden_model.h"

namespace mnemo::engine {

namespace detail {
// hidden_states.cc's implementation with the chunk size as a parameter (the
// public function uses 512): declared here, not in the header, because only
// this test chooses the chunk size.
std::vector<float> mean_hidden_state_chunked(const Model& model, std::span<const int32_t> tokens, int64_t layer,
                                             int64_t chunk);
}  // namespace detail

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using kernels::cpu::MatmulPrecision;

double rel_err(std::span<const float> got, std::span<const float> want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    diff = std::max(diff, std::fabs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

// ---------------------------------------------------------------- goldens

// Exact: the reference bound presumes f32 arithmetic. One thread on the
// test's own thread: on these tiny models every parallel region is mostly
// barrier waits (seconds on a loaded machine instead of milliseconds).
class ExactPrecision {
 protected:
  ExactPrecision() {
    kernels::cpu::set_matmul_precision(MatmulPrecision::Exact);
    threads_ = kernels::cpu::num_threads();
    kernels::cpu::set_num_threads(1);
  }
  ~ExactPrecision() {
    kernels::cpu::set_num_threads(threads_);
    kernels::cpu::set_matmul_precision(MatmulPrecision::Fast);
  }
  int threads_ = 1;
};

class HiddenGolden : public ::testing::TestWithParam<fs::path>, protected ExactPrecision {};

TEST(HiddenGoldenSet, Present) { EXPECT_GE(testing::goldens_in("hidden").size(), 4u); }

TEST_P(HiddenGolden, MeanMatchesReference) {
  const json g = testing::read_golden(GetParam());
  const auto model = testing::load_golden_model(g, "hidden_" + GetParam().stem().string(),
                                                "regenerate with tests/reference/hidden_reference.py");
  ASSERT_TRUE(model);
  const double tol = g["tolerance"]["max_rel_err"].get<double>();
  const auto tokens = g["tokens"].get<std::vector<int32_t>>();
  ASSERT_EQ(g["mean_by_layer"].size(), size_t(model->config().num_layers)) << "every layer is stored";
  for (auto it = g["mean_by_layer"].begin(); it != g["mean_by_layer"].end(); ++it) {
    const int64_t layer = std::stoll(it.key());
    const auto want = it.value().get<std::vector<float>>();
    const auto got = mean_hidden_state(*model, tokens, layer);
    const double e = rel_err(got, want);
    std::printf("%s layer %lld (%zu tokens): max rel err %.3g, bound %.3g\n", g["case"].get<std::string>().c_str(),
                static_cast<long long>(layer), tokens.size(), e, tol);
    EXPECT_LE(e, tol) << "layer " << layer;
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, HiddenGolden, ::testing::ValuesIn(testing::goldens_in("hidden")),
                         [](const auto& info) { return info.param.stem().string(); });

// ---------------------------------------------------------------- contracts

class HiddenContract : public ::testing::Test, protected ExactPrecision {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_dir("hidden_contract");
    testing::TinyModel().write(dir_);
    model_ = Model::load(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<int32_t> tokens(size_t n, uint32_t seed) const {
    return testing::random_tokens(n, seed, model_->config().vocab_size);
  }
  fs::path dir_;
  std::unique_ptr<Model> model_;
};

TEST_F(HiddenContract, ChunkedEqualsUnchunked) {
  const auto t = tokens(1100, 1);
  const auto whole = detail::mean_hidden_state_chunked(*model_, t, 2, int64_t(t.size()));
  ASSERT_EQ(whole.size(), size_t(model_->config().hidden_size));
  // 512 (the default): 512, 512, 76; 7: the GEMV path throughout; 100: a
  // chunk edge that is not a multiple of anything else here.
  for (int64_t chunk : {int64_t(512), int64_t(7), int64_t(100), int64_t(1)}) {
    const auto got = detail::mean_hidden_state_chunked(*model_, t, 2, chunk);
    EXPECT_LE(rel_err(got, whole), 1e-5) << "chunk " << chunk;
  }
  EXPECT_EQ(mean_hidden_state(*model_, t, 2), detail::mean_hidden_state_chunked(*model_, t, 2, 512));
}

TEST_F(HiddenContract, LayerAndLastTokenMatter) {
  const auto t = tokens(30, 2);
  const auto l1 = mean_hidden_state(*model_, t, 1), l2 = mean_hidden_state(*model_, t, 2);
  EXPECT_GT(rel_err(l1, l2), 1e-2) << "layer 2 must run one more layer than layer 1";
  // A prefix's mean is the mean of the first rows: causality ties the means of
  // t[:29] and t together through the last row alone, which must be finite
  // and change the mean.
  const auto prefix = mean_hidden_state(*model_, std::span(t).first(29), 2);
  EXPECT_GT(rel_err(prefix, l2), 1e-4);
  for (float v : l2) EXPECT_TRUE(std::isfinite(v));
}

TEST_F(HiddenContract, RefusesBadInput) {
  const auto t = tokens(5, 3);
  const int64_t L = model_->config().num_layers, V = model_->config().vocab_size;
  EXPECT_THROW(mean_hidden_state(*model_, t, 0), std::invalid_argument);
  EXPECT_THROW(mean_hidden_state(*model_, t, -1), std::invalid_argument);
  EXPECT_THROW(mean_hidden_state(*model_, t, L + 1), std::invalid_argument);
  EXPECT_NO_THROW(mean_hidden_state(*model_, t, L));
  EXPECT_NO_THROW(mean_hidden_state(*model_, t, 1));
  EXPECT_THROW(mean_hidden_state(*model_, std::span<const int32_t>(), 1), std::invalid_argument);
  const std::vector<int32_t> too_big = {1, int32_t(V)}, negative = {-1, 2};
  EXPECT_THROW(mean_hidden_state(*model_, too_big, 1), std::invalid_argument);
  EXPECT_THROW(mean_hidden_state(*model_, negative, 1), std::invalid_argument);
  EXPECT_THROW(detail::mean_hidden_state_chunked(*model_, t, 1, 0), std::invalid_argument);
}

// The daemon computes embeddings on worker threads while the engine's loop
// runs forward passes over the same Model: both must get what they get alone.
// The threads run kernel teams of two (each thread sets its own count), so
// parallel regions of different callers overlap.
TEST_F(HiddenContract, ConcurrentWithForwardMatchesSerial) {
  const auto t = tokens(700, 4), f = tokens(40, 5);
  const auto want = mean_hidden_state(*model_, t, 2);
  auto cache = model_->new_cache();
  const auto want_logits = model_->forward(f, cache, true);
  std::vector<std::vector<float>> got(2);
  std::vector<float> got_logits;
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < got.size(); ++i)
      threads.emplace_back([&, i] {
        kernels::cpu::set_num_threads(2);
        got[i] = mean_hidden_state(*model_, t, 2);
      });
    threads.emplace_back([&] {
      kernels::cpu::set_num_threads(2);
      for (int r = 0; r < 5; ++r) {
        auto c = model_->new_cache();
        got_logits = model_->forward(f, c, true);
      }
    });
  }
  for (const auto& g : got) EXPECT_LE(rel_err(g, want), 1e-6);
  EXPECT_LE(rel_err(got_logits, want_logits), 1e-6);
}

}  // namespace
}  // namespace mnemo::engine
