// The per-operation profile of a forward pass: every op of a layer counted
// once per layer, in the right phase, with the bytes its shapes imply.
#include "engine/model/op_profile.h"

#include <gtest/gtest.h>

#include "engine/model/model.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine {
namespace {

using prof::Op;
using prof::Phase;

class OpProfile : public ::testing::Test {
 protected:
  void SetUp() override {
    prof::enable(false);
    prof::reset();
  }
  void TearDown() override {
    prof::enable(false);
    prof::reset();
  }
};

TEST_F(OpProfile, OffCountsNothing) {
  const auto dir = testing::fresh_dir("op_profile_off");
  testing::TinyModel().write(dir);
  const auto m = Model::load(dir);
  KvCache c = m->new_cache();
  const std::vector<int32_t> prompt{1, 2, 3};
  m->forward(prompt, c);
  const prof::Snapshot s = prof::snapshot();
  for (int p = 0; p < prof::kPhases; ++p) {
    EXPECT_EQ(s.passes[size_t(p)], 0u);
    for (int o = 0; o < prof::kOps; ++o) EXPECT_EQ(s.ops[size_t(p)][size_t(o)].calls, 0u) << prof::op_name(Op(o));
  }
}

TEST_F(OpProfile, CountsEveryOpOfPrefillAndDecode) {
  const auto dir = testing::fresh_dir("op_profile");
  testing::TinyModel().write(dir);
  const auto m = Model::load(dir);
  const ModelConfig& cfg = m->config();
  const uint64_t layers = uint64_t(cfg.num_layers), H = uint64_t(cfg.hidden_size), I = uint64_t(cfg.intermediate_size);
  const uint64_t kvd = uint64_t(cfg.num_kv_heads * cfg.head_dim), V = uint64_t(cfg.vocab_size);
  ASSERT_EQ(layers, 2u);

  prof::enable(true);
  KvCache c = m->new_cache();
  const std::vector<int32_t> prompt{1, 2, 3, 4, 5};
  m->forward(prompt, c);  // prefill: 5 tokens
  const int32_t next = 7;
  m->forward(std::span(&next, 1), c);  // decode at position 5
  m->forward(std::span(&next, 1), c);  // decode at position 6
  prof::enable(false);
  m->forward(std::span(&next, 1), c);  // not counted
  const prof::Snapshot s = prof::snapshot();

  EXPECT_EQ(s.passes[size_t(Phase::Prefill)], 1u);
  EXPECT_EQ(s.passes[size_t(Phase::Decode)], 2u);
  // The tiny model's matrices are f32: bytes are rows * cols * 4.
  const uint64_t qkv = (H * H + 2 * kvd * H) * 4, o = H * H * 4, gate_up = 2 * I * H * 4, down = H * I * 4;
  const uint64_t lm = V * H * 4;
  struct Expect {
    Op op;
    uint64_t calls_per_pass, bytes_per_decode;
  };
  const Expect expect[] = {
      {Op::Embed, 1, H * 4 + H * 4},
      {Op::RmsNorm, 2 * layers, 2 * layers * (2 * H + H) * 4},
      {Op::QkvMatmul, layers, layers * qkv},
      {Op::Rope, layers, layers * 2 * (H + kvd) * 4},
      {Op::KvWrite, layers, layers * 2 * kvd * 2 * 4},
      {Op::Attention, layers, 0},  // depends on the position: checked below
      {Op::OMatmul, layers, layers * o},
      {Op::ResidualAdd, 2 * layers, 2 * layers * 3 * H * 4},
      {Op::GateUpMatmul, layers, layers * gate_up},
      {Op::Silu, layers, layers * 3 * I * 4},
      {Op::DownMatmul, layers, layers * down},
      {Op::FinalNorm, 1, (2 * H + H) * 4},
      {Op::LmHead, 1, lm},
  };
  for (const Expect& e : expect) {
    const prof::OpTotals& pre = s.at(Phase::Prefill, e.op);
    const prof::OpTotals& dec = s.at(Phase::Decode, e.op);
    EXPECT_EQ(pre.calls, e.calls_per_pass) << prof::op_name(e.op);
    EXPECT_EQ(dec.calls, 2 * e.calls_per_pass) << prof::op_name(e.op);
    EXPECT_GT(dec.ns, 0) << prof::op_name(e.op);
    if (e.bytes_per_decode > 0) {
      EXPECT_EQ(dec.bytes, 2 * e.bytes_per_decode) << prof::op_name(e.op);
    }
  }
  // Attention reads every K,V row of the cache: 6 then 7 positions per layer (f32).
  EXPECT_EQ(s.at(Phase::Decode, Op::Attention).bytes, layers * (6 + 7) * kvd * 2 * 4);
  EXPECT_EQ(s.at(Phase::Prefill, Op::Attention).bytes, layers * 5 * kvd * 2 * 4);
  // Matmul FLOPs: 2 per weight per token; the prefill pass's LM head runs on its last token only.
  EXPECT_EQ(s.at(Phase::Prefill, Op::QkvMatmul).flops, 5 * 2 * qkv / 4 * layers);
  EXPECT_EQ(s.at(Phase::Prefill, Op::LmHead).flops, 2 * V * H);
  EXPECT_EQ(s.at(Phase::Decode, Op::Sampling).calls, 0u);  // the engine samples, not the model

  // The table names each counted op and accounts the rest of the wall time as "other".
  const int64_t ops_ns = s.total_ns(Phase::Decode);
  const std::string t = prof::table(s, Phase::Decode, 40.0, ops_ns * 2);
  for (const Expect& e : expect) EXPECT_NE(t.find(prof::op_name(e.op)), std::string::npos) << t;
  EXPECT_NE(t.find("other"), std::string::npos) << t;
  EXPECT_NE(t.find("% peak"), std::string::npos) << t;
  EXPECT_EQ(t.find("sampling"), std::string::npos) << t;

  prof::reset();
  EXPECT_EQ(prof::snapshot().total_ns(Phase::Decode), 0);
}

}  // namespace
}  // namespace mnemo::engine
