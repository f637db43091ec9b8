#include <gtest/gtest.h>

#include <cmath>

#include "engine/model/hidden_states.h"
#include "engine/model/model.h"
#include "memory/episodes/hidden_state_embedder.h"
#include "memory/episodes/tfidf_embedder.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::memory::episodes {
namespace {

std::vector<Segment> texts(std::initializer_list<const char*> t) {
  std::vector<Segment> out;
  for (const char* s : t) out.push_back(Segment::of_text(s));
  return out;
}

float norm(std::span<const float> v) { return std::sqrt(dot(v, v)); }

TEST(EpisodesTfidf, WordsAreLowercasedRunsOfTwoOrMoreCharacters) {
  EXPECT_EQ(word_tokens("I'm Going to the U.S. 2x!"), (std::vector<std::string>{"going", "to", "the", "2x"}));
  TfidfEmbedder e;
  // Bigrams are formed after the one-character words are dropped (as scikit-learn does).
  EXPECT_EQ(e.terms(Segment::of_text("Red a fox")), (std::vector<std::string>{"red", "fox", "red fox"}));
  TfidfEmbedder uni({.tokens = false, .ngram_max = 1});
  EXPECT_EQ(uni.terms(Segment::of_text("red fox")), (std::vector<std::string>{"red", "fox"}));
}

TEST(EpisodesTfidf, IdfAndVectorsMatchAHandComputation) {
  TfidfEmbedder e;
  const auto m = e.fit(texts({"apple banana", "apple cherry", "durian durian"}));
  ASSERT_EQ(m.rows, 3u);
  EXPECT_EQ(m.dim, 7u);  // apple banana cherry durian, "apple banana" "apple cherry" "durian durian"
  const double idf2 = std::log(4.0 / 3.0) + 1, idf1 = std::log(4.0 / 2.0) + 1;
  EXPECT_NEAR(e.idf("apple"), idf2, 1e-6);
  EXPECT_NEAR(e.idf("banana"), idf1, 1e-6);
  EXPECT_NEAR(e.idf("apple banana"), idf1, 1e-6);
  EXPECT_EQ(e.idf("mango"), 0.0f);
  // cos(A, B): only "apple" is shared; |A|^2 = |B|^2 = idf2^2 + 2 idf1^2.
  const double expect = idf2 * idf2 / (idf2 * idf2 + 2 * idf1 * idf1);
  EXPECT_NEAR(dot(m.row(0), m.row(1)), expect, 1e-6);
  EXPECT_NEAR(dot(m.row(0), m.row(2)), 0.0, 1e-7);
  // tf counts: "durian durian" has durian twice and its bigram once.
  const auto d = m.row(2);
  std::vector<float> nonzero;
  for (float x : d)
    if (x != 0) nonzero.push_back(x);
  ASSERT_EQ(nonzero.size(), 2u);
  EXPECT_NEAR(std::max(nonzero[0], nonzero[1]) / std::min(nonzero[0], nonzero[1]), 2.0, 1e-5);
}

TEST(EpisodesTfidf, RowsAreUnitAndIdenticalWindowsEqual) {
  TfidfEmbedder e;
  const auto m = e.fit(texts({"we went hiking on the trail", "the band played a new song", "we went hiking on the trail"}));
  for (size_t r = 0; r < m.rows; ++r) EXPECT_NEAR(norm(m.row(r)), 1.0f, 1e-5);
  for (size_t i = 0; i < m.dim; ++i) EXPECT_EQ(m.row(0)[i], m.row(2)[i]);
  // A later piece is embedded in the fitted space, the same as fit() embedded it.
  const auto again = e.embed(Segment::of_text("we went hiking on the trail"));
  for (size_t i = 0; i < m.dim; ++i) EXPECT_NEAR(again[i], m.row(0)[i], 1e-6);
  // Unknown words only: the zero vector.
  const auto unknown = e.embed(Segment::of_text("zebra xylophone"));
  EXPECT_EQ(norm(unknown), 0.0f);
}

TEST(EpisodesTfidf, TokenIdsAsTerms) {
  TfidfEmbedder e({.tokens = true, .ngram_max = 1});
  std::vector<Segment> w = {Segment::of_tokens({5, 6, 5}), Segment::of_tokens({7})};
  const auto m = e.fit(w);
  EXPECT_EQ(m.dim, 3u);
  EXPECT_EQ(e.terms(w[0]), (std::vector<std::string>{"#5", "#6", "#5"}));
  EXPECT_NEAR(dot(m.row(0), m.row(1)), 0.0f, 1e-7);
  EXPECT_NEAR(norm(m.row(0)), 1.0f, 1e-6);
  // State round trip: restore refits on the same windows.
  TfidfEmbedder r;
  r.restore(e.state(), w);
  EXPECT_EQ(r.name(), "tfidf-tokens");
  const auto v = r.embed(w[0]);
  for (size_t i = 0; i < m.dim; ++i) EXPECT_EQ(v[i], m.row(0)[i]);
}

// A stand-in model: per-topic token counts plus a large shared offset, the
// common direction real residual streams have.
std::vector<float> fake_hidden(std::span<const int32_t> tokens) {
  std::vector<float> v(3, 0.0f);
  for (int32_t t : tokens) v[t / 100] += 1.0f;
  for (float& x : v) x = x / static_cast<float>(tokens.size()) + 10.0f;
  return v;
}

TEST(EpisodesHiddenState, CentringRemovesTheSharedDirection) {
  std::vector<Segment> w = {Segment::of_tokens({1, 2}), Segment::of_tokens({101, 102}), Segment::of_tokens({201})};
  HiddenStateEmbedder raw(fake_hidden, {}, /*center=*/false);
  const auto r = raw.fit(w);
  EXPECT_GT(dot(r.row(0), r.row(1)), 0.99f);  // raw: everything looks alike
  HiddenStateEmbedder centred(fake_hidden, {}, /*center=*/true);
  const auto c = centred.fit(w);
  EXPECT_LT(dot(c.row(0), c.row(1)), 0.0f);
  EXPECT_NEAR(norm(c.row(0)), 1.0f, 1e-5);
  // A text piece goes through the tokenizer function.
  HiddenStateEmbedder text(fake_hidden, [](std::string_view s) { return std::vector<int32_t>(s.size(), 150); }, false);
  text.fit(w);
  const auto v = text.embed(Segment::of_text("abc"));
  const auto expect = raw.embed(Segment::of_tokens({150}));
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(v[i], expect[i], 1e-6);
  // Re-fitting a grown conversation runs the model only on the new window.
  const size_t calls = centred.forward_calls();
  EXPECT_EQ(calls, 3u);
  auto grown = w;
  grown.push_back(Segment::of_tokens({202, 203}));
  centred.fit(grown);
  EXPECT_EQ(centred.forward_calls(), calls + 1);
  centred.fit(w);
  // The mean survives a state round trip.
  HiddenStateEmbedder back(fake_hidden, {}, false);
  back.restore(centred.state(), w);
  const auto b = back.embed(w[1]);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(b[i], c.row(1)[i], 1e-6);
}

// The adapter to the engine: the embedder's vector is the engine's mean
// hidden state, centred on the windows' mean and normalised.
TEST(EpisodesHiddenState, EngineAdapterEmbedsWithTheModel) {
  const auto dir = engine::testing::fresh_dir("episodes_hidden");
  engine::testing::TinyModel().write(dir);
  const auto model = engine::Model::load(dir);
  std::vector<Segment> w = {Segment::of_tokens({1, 2, 3}), Segment::of_tokens({4, 5}), Segment::of_tokens({6, 7, 8, 9})};
  HiddenStateEmbedder e(engine_hidden_state(*model, 1), {});
  const Matrix m = e.fit(w);
  ASSERT_EQ(m.dim, 32u);
  std::vector<std::vector<float>> raw;
  for (const auto& s : w) raw.push_back(engine::mean_hidden_state(*model, s.tokens, 1));
  for (size_t r = 0; r < w.size(); ++r) {
    std::vector<float> want(32);
    for (size_t i = 0; i < 32; ++i) want[i] = raw[r][i] - (raw[0][i] + raw[1][i] + raw[2][i]) / 3.0f;
    normalize(want);
    for (size_t i = 0; i < 32; ++i) EXPECT_NEAR(m.row(r)[i], want[i], 1e-5);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mnemo::memory::episodes
