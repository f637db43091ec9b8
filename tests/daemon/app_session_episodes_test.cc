// daemon/app/session_episodes: an episodic session's index fed from its
// messages, routing, persistence round trip, rewritten histories and the
// TF-IDF fallback, with TF-IDF (no model).
#include <gtest/gtest.h>

#include <stdexcept>

#include "daemon/app/session_episodes.h"
#include "memory/episodes/tfidf_embedder.h"

namespace mnemo::daemon::app {
namespace {

namespace ep = memory::episodes;

std::shared_ptr<ep::Embedder> tfidf_only(const std::string& kind) {
  if (kind != "tfidf") throw std::runtime_error("no model here");
  return std::make_shared<ep::TfidfEmbedder>();
}

// A model embedder that fails at its first use (fit).
class Failing final : public ep::Embedder {
 public:
  std::string name() const override { return "hidden-state"; }
  ep::Matrix fit(std::span<const ep::Segment>) override { throw std::runtime_error("forward pass failed"); }
  std::vector<float> embed(const ep::Segment&) const override { throw std::runtime_error("forward pass failed"); }
  size_t dim() const override { return 0; }
  nlohmann::json state() const override { return nullptr; }
  void restore(const nlohmann::json&, std::span<const ep::Segment>) override {}
};

std::shared_ptr<ep::Embedder> failing_model(const std::string& kind) {
  if (kind == "model") return std::make_shared<Failing>();
  return std::make_shared<ep::TfidfEmbedder>();
}

// 16 utterances about cooking, then 16 about astronomy.
std::vector<ep::Utterance> two_topics() {
  std::vector<ep::Utterance> h;
  for (int i = 0; i < 16; ++i)
    h.push_back({i % 2 ? "assistant" : "user",
                 "The recipe needs flour butter sugar and the oven at " + std::to_string(180 + i) + " degrees."});
  for (int i = 0; i < 16; ++i)
    h.push_back({i % 2 ? "assistant" : "user",
                 "The telescope shows the planet Jupiter and its moon number " + std::to_string(i) + " tonight."});
  return h;
}

TEST(SessionEpisodes, HistoryIsUserAndAssistantTextBeforeTheLastUserMessage) {
  const std::vector<engine::ChatMessage> m = {
      {"system", "be brief", {}, "", ""},  {"user", "u1", {}, "", ""},   {"assistant", "a1", {}, "", ""},
      {"tool", "t1", {}, "call_1", "f"},   {"assistant", "", {}, "", ""}, {"user", "the question", {}, "", ""},
      {"assistant", "partial", {}, "", ""}};
  const auto h = history_utterances(m);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].speaker, "user");
  EXPECT_EQ(h[0].text, "u1");
  EXPECT_EQ(h[1].text, "a1");
  EXPECT_EQ(question_text(m), "the question");
  EXPECT_FALSE(question_text(std::span(m).first(1)));
}

TEST(SessionEpisodes, TopicsBecomeEpisodesAndQuestionsRouteToTheirs) {
  SessionEpisodes s("tfidf", 2, tfidf_only);
  const auto h = two_topics();
  const auto sync = s.sync(h);
  EXPECT_EQ(sync.added, h.size());
  EXPECT_EQ(sync.reason, "unclustered");
  ASSERT_EQ(s.episodes(), 2u);
  const ep::Route cook = s.route("How hot was the oven for the recipe with butter?");
  const ep::Route sky = s.route("Which moon of Jupiter did the telescope show?");
  EXPECT_NE(cook.episode, sky.episode);
  EXPECT_GT(cook.cosine, 0.1f);
  EXPECT_GT(sky.cosine, 0.1f);
  // The representatives of the cooking episode are about cooking.
  for (const std::string& t : s.representative_texts(cook.episode)) EXPECT_NE(t.find("oven"), std::string::npos) << t;
  // Nothing new: no re-clustering.
  EXPECT_EQ(s.sync(h).added, 0u);
}

TEST(SessionEpisodes, StateRoundTripRoutesTheSameAndContinues) {
  SessionEpisodes s("tfidf", 2, tfidf_only);
  auto h = two_topics();
  s.sync(h);
  SessionEpisodes r = SessionEpisodes::restore(nlohmann::json::parse(s.state().dump()), tfidf_only);
  EXPECT_EQ(r.episodes(), 2u);
  EXPECT_EQ(r.index().windows().size(), s.index().windows().size());
  for (const char* q : {"oven butter", "telescope moon"}) {
    EXPECT_EQ(r.route(q).episode, s.route(q).episode) << q;
    EXPECT_NEAR(r.route(q).cosine, s.route(q).cosine, 1e-5) << q;
  }
  // The restored index continues where it was: new turns only are added.
  h.push_back({"user", "The telescope also shows Saturn and its rings."});
  const auto sync = r.sync(h);
  EXPECT_FALSE(sync.reset);
  EXPECT_EQ(sync.added, 1u);
}

TEST(SessionEpisodes, GrowthReclustersAndARewrittenHistoryStartsOver) {
  SessionEpisodes s("tfidf", 2, tfidf_only);
  auto h = two_topics();
  const std::vector<ep::Utterance> half(h.begin(), h.begin() + 16);
  s.sync(half);
  const auto grown = s.sync(h);  // twice the windows: past the growth threshold
  EXPECT_EQ(grown.reason, "growth");
  EXPECT_EQ(grown.result.changed.size(), grown.result.episodes);
  h[3].text = "edited";
  const auto rewritten = s.sync(h);
  EXPECT_TRUE(rewritten.reset);
  EXPECT_EQ(rewritten.added, h.size());
  EXPECT_EQ(s.index().utterances_seen(), h.size());
}

TEST(SessionEpisodes, AFailingModelEmbedderFallsBackToTfidf) {
  SessionEpisodes s("model", 2, failing_model);
  const auto sync = s.sync(two_topics());
  EXPECT_TRUE(sync.fell_back);
  EXPECT_EQ(s.embedder(), "tfidf");
  EXPECT_EQ(s.episodes(), 2u);
  EXPECT_EQ(s.state()["embedder"], "tfidf");  // restored as what it now is
  EXPECT_EQ(SessionEpisodes::restore(s.state(), failing_model).embedder(), "tfidf");
}

}  // namespace
}  // namespace mnemo::daemon::app
