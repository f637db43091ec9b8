#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "memory/episodes/episode_index.h"
#include "memory/episodes/hidden_state_embedder.h"
#include "memory/episodes/tfidf_embedder.h"

namespace mnemo::memory::episodes {
namespace {

const std::vector<std::vector<std::string>> kTopics = {
    {"pasta", "garlic", "sauce", "oven", "recipe", "basil", "dough", "simmer"},
    {"trail", "summit", "boots", "mountain", "hike", "ridge", "campsite", "backpack"},
    {"guitar", "concert", "chords", "band", "song", "drummer", "melody", "stage"},
};

// An utterance about topic t; n varies the words so windows differ.
Utterance about(size_t t, size_t n) {
  const auto& w = kTopics[t];
  return {n % 2 ? "Bob" : "Ann", "the " + w[n % 8] + " and " + w[(n * 3 + 1) % 8] + " with " + w[(n * 5 + 2) % 8]};
}

// Topic blocks A B C A B C, each 3 windows of 4 utterances.
std::vector<Utterance> conversation() {
  std::vector<Utterance> u;
  size_t n = 0;
  for (int rep = 0; rep < 2; ++rep)
    for (size_t t = 0; t < 3; ++t)
      for (int i = 0; i < 12; ++i) u.push_back(about(t, n++));
  return u;
}

size_t topic_of_window(size_t w) { return (w / 3) % 3; }

EpisodeIndexOptions three() {
  EpisodeIndexOptions o;
  o.episodes = 3;
  o.representatives = 4;
  return o;
}

TEST(EpisodesIndex, BuildClustersTopicsAndRoutesQuestions) {
  EpisodeIndex idx(std::make_shared<TfidfEmbedder>(), three());
  idx.build(conversation());
  ASSERT_EQ(idx.windows().size(), 18u);
  ASSERT_EQ(idx.episodes().count(), 3u);
  EXPECT_FALSE(idx.needs_recluster());
  // Each topic is one episode.
  std::vector<std::set<int32_t>> by_topic(3);
  for (size_t w = 0; w < 18; ++w) by_topic[topic_of_window(w)].insert(idx.assignment()[w]);
  for (const auto& s : by_topic) EXPECT_EQ(s.size(), 1u);
  EXPECT_GT(idx.silhouette(), 0.2f);
  // Representatives: members of their episode, chronological.
  for (int32_t e = 0; e < 3; ++e) {
    const auto& r = idx.episodes().representatives[e];
    EXPECT_EQ(r.size(), 4u);
    EXPECT_TRUE(std::is_sorted(r.begin(), r.end()));
    for (size_t w : r) EXPECT_EQ(idx.assignment()[w], e);
    EXPECT_EQ(idx.representative_windows(e).size(), 4u);
  }
  const Route r = idx.route(Segment::of_text("Which recipe used garlic and basil?"));
  EXPECT_EQ(r.episode, *by_topic[0].begin());
  EXPECT_GT(r.cosine, 0.1f);
  EXPECT_EQ(idx.route(Segment::of_text("who was the drummer on stage")).episode, *by_topic[2].begin());
}

TEST(EpisodesIndex, OnlineWindowsJoinTheirEpisodeUntilGrowthAsksForARecluster) {
  EpisodeIndex idx(std::make_shared<TfidfEmbedder>(), three());
  idx.build(conversation());
  const int32_t hiking = idx.assignment()[3];
  // 18 windows clustered: 25% growth = 5 new windows.
  size_t n = 1000;
  for (int w = 0; w < 4; ++w) {
    std::vector<Utterance> u;
    for (int i = 0; i < 4; ++i) u.push_back(about(1, n++));
    const auto added = idx.add_utterances(u);
    ASSERT_EQ(added.size(), 1u);
    EXPECT_EQ(idx.assignment()[added[0]], hiking);
  }
  EXPECT_EQ(idx.new_windows(), 4u);
  EXPECT_FALSE(idx.needs_recluster());
  // Three utterances stay pending until a window is full.
  std::vector<Utterance> u = {about(2, n++), about(2, n++), about(2, n++)};
  EXPECT_TRUE(idx.add_utterances(u).empty());
  EXPECT_FALSE(idx.needs_recluster());
  const auto tail = idx.flush();
  ASSERT_TRUE(tail.has_value());
  EXPECT_EQ(idx.windows()[*tail].first_utterance, 72u + 16u);
  EXPECT_EQ(idx.windows()[*tail].end_utterance, 72u + 19u);
  EXPECT_EQ(idx.utterances_seen(), 91u);
  EXPECT_TRUE(idx.needs_recluster());
  EXPECT_EQ(idx.recluster_reason(), "growth");

  const std::vector<int32_t> before(idx.assignment().begin(), idx.assignment().begin() + 18);
  const auto result = idx.recluster();
  EXPECT_EQ(result.episodes, 3u);
  EXPECT_EQ(result.changed.size(), 3u);
  // No window joined the cooking episode: its representatives, and so its cache, stay.
  EXPECT_FALSE(result.changed[idx.assignment()[0]]);
  // Labels are kept: the original windows keep their episode ids.
  EXPECT_EQ(std::vector<int32_t>(idx.assignment().begin(), idx.assignment().begin() + 18), before);
  EXPECT_EQ(idx.new_windows(), 0u);
  EXPECT_FALSE(idx.needs_recluster());
}

// Grows the hiking topic by `windows` windows of new wording, then re-clusters.
ReclusterResult grow_hiking(EpisodeIndex& idx, int windows, std::vector<std::vector<size_t>>& reps_before) {
  reps_before = idx.episodes().representatives;
  size_t n = 5000;
  for (int w = 0; w < windows; ++w) {
    std::vector<Utterance> u;
    for (int i = 0; i < 4; ++i) u.push_back(about(1, n++));
    idx.add_utterances(u);
  }
  return idx.recluster();
}

TEST(EpisodesIndex, AnEpisodeWhoseRepresentativesMostlyStayKeepsItsCache) {
  // Strict: any change of representatives asks for a rebuild.
  EpisodeIndexOptions strict = three();
  strict.keep_overlap = 1.01;
  strict.keep_cosine = 2.0f;
  EpisodeIndex a(std::make_shared<TfidfEmbedder>(), strict), b(std::make_shared<TfidfEmbedder>(), three());
  a.build(conversation());
  b.build(conversation());
  std::vector<std::vector<size_t>> ra, rb;
  const ReclusterResult sa = grow_hiking(a, 5, ra), sb = grow_hiking(b, 5, rb);
  const int32_t hiking = b.assignment()[3];
  ASSERT_EQ(sb.overlap.size(), 3u);
  ASSERT_EQ(sb.centroid_cosine.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    const bool differ = b.episodes().representatives[e] != rb[e];
    // The rule, as documented: kept unless the representatives differ, fewer
    // than keep_overlap of them stayed, and the centroid moved.
    EXPECT_EQ(sb.changed[e], differ && sb.overlap[e] < 0.5 && sb.centroid_cosine[e] < 0.98f) << e;
    EXPECT_EQ(sa.changed[e], a.episodes().representatives[e] != ra[e]) << e;
    EXPECT_GE(sb.overlap[e], 0.0);
    EXPECT_LE(sb.overlap[e], 1.0);
    if (!differ) {
      EXPECT_EQ(sb.overlap[e], 1.0) << e;
    }
  }
  // Five new hiking windows displace some of hiking's 4 representatives:
  // strict rebuilds it, the default keeps it (most representatives stayed).
  ASSERT_NE(b.episodes().representatives[hiking], rb[hiking]) << "the growth did not move hiking's representatives";
  EXPECT_TRUE(sa.changed[a.assignment()[3]]);
  EXPECT_GE(sb.overlap[hiking], 0.5);
  EXPECT_FALSE(sb.changed[hiking]);
  // The same words (the vocabulary did not grow): the two fits share one space.
  EXPECT_GT(sb.centroid_cosine[hiking], 0.9f);
  EXPECT_LE(sb.centroid_cosine[hiking], 1.0001f);
}

TEST(EpisodesIndex, LowConfidenceRoutesAskForARecluster) {
  EpisodeIndexOptions o = three();
  o.low_confidence_routes = 2;
  o.min_route_cosine = 0.05f;
  EpisodeIndex idx(std::make_shared<TfidfEmbedder>(), o);
  idx.build(conversation());
  EXPECT_GT(idx.route(Segment::of_text("the pasta sauce")).cosine, 0.05f);
  EXPECT_EQ(idx.low_confidence_count(), 0u);
  const Route r = idx.route(Segment::of_text("quantum chromodynamics"));  // no known word
  EXPECT_EQ(r.cosine, 0.0f);
  EXPECT_EQ(idx.last_route()->cosine, 0.0f);
  idx.peek_route(Segment::of_text("zebra"));  // peeking records nothing
  EXPECT_EQ(idx.low_confidence_count(), 1u);
  idx.route(Segment::of_text("zebra"));
  EXPECT_EQ(idx.low_confidence_count(), 2u);
  // Nothing new to cluster yet: re-clustering the same windows would change nothing.
  EXPECT_FALSE(idx.needs_recluster());
  // One new window (below the growth trigger) about what the questions asked.
  std::vector<Utterance> u(4, Utterance{"Ann", "quantum chromodynamics and a zebra"});
  idx.add_utterances(u);
  EXPECT_TRUE(idx.needs_recluster());
  EXPECT_EQ(idx.recluster_reason(), "low-confidence");
  idx.recluster();
  EXPECT_EQ(idx.low_confidence_count(), 0u);
  EXPECT_FALSE(idx.needs_recluster());
  // The re-fitted vocabulary knows the words now.
  EXPECT_GT(idx.route(Segment::of_text("zebra")).cosine, 0.05f);
}

TEST(EpisodesIndex, UnclusteredWindowsAskForAFirstClustering) {
  EpisodeIndex idx(std::make_shared<TfidfEmbedder>(), three());
  EXPECT_FALSE(idx.needs_recluster());  // nothing yet
  EXPECT_EQ(idx.route(Segment::of_text("pasta")).episode, -1);
  const auto u = conversation();
  idx.add_utterances(std::span(u).first(8));
  EXPECT_EQ(idx.assignment(), (std::vector<int32_t>{-1, -1}));
  EXPECT_EQ(idx.recluster_reason(), "unclustered");
  idx.recluster();
  EXPECT_EQ(idx.episodes().count(), 2u);  // two windows, three episodes asked
}

TEST(EpisodesIndex, TimeChunksMethodIsContiguous) {
  EpisodeIndexOptions o = three();
  o.method = EpisodeMethod::TimeChunks;
  EpisodeIndex idx(std::make_shared<TfidfEmbedder>(), o);
  idx.build(conversation());
  EXPECT_EQ(idx.assignment(), time_chunk_assignment(18, 3));
  EXPECT_EQ(method_from_name("time-chunks"), EpisodeMethod::TimeChunks);
  EXPECT_THROW(method_from_name("dbscan"), std::invalid_argument);
}

TEST(EpisodesIndex, JsonRoundTripRestoresRoutingAndOnlineState) {
  EpisodeIndex idx(std::make_shared<TfidfEmbedder>(), three());
  idx.build(conversation());
  std::vector<Utterance> more = {about(0, 500), about(0, 501), about(0, 502), about(0, 503), about(1, 504)};
  idx.add_utterances(more);  // one window added online, one utterance pending
  idx.route(Segment::of_text("zebra"));

  const std::string text = idx.to_json().dump();
  EpisodeIndex back = EpisodeIndex::from_json(nlohmann::json::parse(text), std::make_shared<TfidfEmbedder>());
  EXPECT_EQ(back.to_json(), idx.to_json());
  EXPECT_EQ(back.assignment(), idx.assignment());
  EXPECT_EQ(back.episodes().representatives, idx.episodes().representatives);
  EXPECT_EQ(back.low_confidence_count(), 1u);
  EXPECT_EQ(back.new_windows(), 1u);
  for (const char* q : {"garlic bread recipe", "a long hike to the summit", "band concert"}) {
    const Route a = idx.peek_route(Segment::of_text(q)), b = back.peek_route(Segment::of_text(q));
    EXPECT_EQ(a.episode, b.episode) << q;
    EXPECT_EQ(a.cosine, b.cosine) << q;
  }
  // The pending utterance and the embedding fit survive: the same next window, the same episode.
  std::vector<Utterance> next = {about(1, 505), about(1, 506), about(1, 507)};
  const auto wa = idx.add_utterances(next), wb = back.add_utterances(next);
  ASSERT_EQ(wa.size(), 1u);
  ASSERT_EQ(wb.size(), 1u);
  EXPECT_EQ(back.windows()[wb[0]].text, idx.windows()[wa[0]].text);
  EXPECT_EQ(back.assignment()[wb[0]], idx.assignment()[wa[0]]);
  // Re-clustering after a restore (embeddings recomputed) gives the same episodes.
  idx.recluster();
  back.recluster();
  EXPECT_EQ(back.assignment(), idx.assignment());

  HiddenStateFn never = [](std::span<const int32_t>) -> std::vector<float> { throw std::logic_error("unused"); };
  EXPECT_THROW(EpisodeIndex::from_json(nlohmann::json::parse(text), std::make_shared<HiddenStateEmbedder>(never, TokenizeFn{})),
               std::invalid_argument);
}

// Pieces whose text is their coordinates ("0.1 1 0"), so the geometry is chosen by the test.
class CoordEmbedder final : public Embedder {
 public:
  std::string name() const override { return "coords"; }
  Matrix fit(std::span<const Segment> windows) override {
    Matrix m;
    for (const auto& w : windows) m.append(embed(w));
    return m;
  }
  std::vector<float> embed(const Segment& piece) const override {
    std::vector<float> v;
    std::istringstream in(piece.text);
    for (float x; in >> x;) v.push_back(x);
    normalize(v);
    return v;
  }
  size_t dim() const override { return 3; }
  nlohmann::json state() const override { return nlohmann::json::object(); }
  void restore(const nlohmann::json&, std::span<const Segment>) override {}
};

TEST(EpisodesIndex, NearestWindowRoutingCanDisagreeWithTheCentroid) {
  const std::vector<Segment> w = {Segment::of_text("1 0 0"), Segment::of_text("0 1 0"), Segment::of_text("0.6 0.8 0"),
                                  Segment::of_text("0.6 0.8 0")};
  EpisodeIndexOptions o;
  o.episodes = 2;
  o.method = EpisodeMethod::TimeChunks;  // {w0, w1}, {w2, w3}
  EpisodeIndex by_centroid(std::make_shared<CoordEmbedder>(), o);
  by_centroid.build(w);
  o.route_by = RouteBy::NearestWindow;
  EpisodeIndex by_window(std::make_shared<CoordEmbedder>(), o);
  by_window.build(w);
  const Segment q = Segment::of_text("0.1 1 0");  // nearest window w1 (episode 0), nearest centroid episode 1
  const Route c = by_centroid.route(q), n = by_window.route(q);
  EXPECT_EQ(c.episode, 1);
  EXPECT_NEAR(c.cosine, (0.1 * 0.6 + 0.8) / std::sqrt(1.01), 1e-5);
  EXPECT_EQ(n.episode, 0);
  EXPECT_NEAR(n.cosine, 1 / std::sqrt(1.01), 1e-5);
  // The routing mode survives the JSON state; the restored index re-embeds its windows.
  EpisodeIndex back = EpisodeIndex::from_json(by_window.to_json(), std::make_shared<CoordEmbedder>());
  EXPECT_EQ(back.options().route_by, RouteBy::NearestWindow);
  EXPECT_EQ(back.peek_route(q).episode, 0);
  EXPECT_THROW(route_by_from_name("closest"), std::invalid_argument);
}

// Token conversations (the recall testbed has no text): windows of token ids
// embedded by a hidden-state function, or by bag-of-token-ids TF-IDF.
TEST(EpisodesIndex, TokenConversationsClusterByTopic) {
  std::vector<std::vector<int32_t>> utt;
  for (int rep = 0; rep < 2; ++rep)
    for (int t = 0; t < 3; ++t)
      for (int i = 0; i < 8; ++i) utt.push_back({100 * t + i, 100 * t + (i * 7) % 50, 100 * t + 40});
  const auto windows = segment_token_windows(utt, 4);  // 12 windows, topic = (w / 2) % 3
  auto hidden = [](std::span<const int32_t> tokens) {
    std::vector<float> v(3, 5.0f);
    for (int32_t t : tokens) v[t / 100] += 1.0f / static_cast<float>(tokens.size());
    return v;
  };
  EpisodeIndexOptions o = three();
  o.representatives = 2;
  for (int kind = 0; kind < 2; ++kind) {
    std::shared_ptr<Embedder> e;
    if (kind == 0) e = std::make_shared<HiddenStateEmbedder>(hidden, TokenizeFn{});
    else e = std::make_shared<TfidfEmbedder>(TfidfOptions{.tokens = true, .ngram_max = 1});
    EpisodeIndex idx(e, o);
    idx.build(windows);
    std::vector<std::set<int32_t>> by_topic(3);
    for (size_t w = 0; w < windows.size(); ++w) by_topic[(w / 2) % 3].insert(idx.assignment()[w]);
    for (const auto& s : by_topic) EXPECT_EQ(s.size(), 1u) << e->name();
    EXPECT_EQ(idx.route(Segment::of_tokens({140, 141})).episode, *by_topic[1].begin()) << e->name();
  }
}

}  // namespace
}  // namespace mnemo::memory::episodes
