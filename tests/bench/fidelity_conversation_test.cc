// The fidelity benchmark's conversations: what the recall testbed needs of
// them (every key once, its value right after it, one topic per utterance),
// questions spread over the whole history, LoCoMo's facts at evidence turns.
#include "bench/fidelity/conversation.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

namespace mnemo::bench::fidelity {
namespace {

int topic_of(int32_t t, int64_t topics) { return t < 64 ? -1 : int((t - 64) % topics); }

void expect_well_formed(const Conversation& c, int64_t topics) {
  std::map<int32_t, int> count;
  for (int32_t t : c.tokens) ++count[t];
  ASSERT_FALSE(c.facts.empty());
  for (const auto& f : c.facts) {
    EXPECT_EQ(count[f.key], 1) << "key " << f.key << " occurs more than once: the induction head would be ambiguous";
    EXPECT_EQ(c.tokens[size_t(f.value_pos)], f.value);
    EXPECT_EQ(c.tokens[size_t(f.value_pos - 1)], f.key);
    EXPECT_EQ(topic_of(f.key, topics), f.topic);
    EXPECT_EQ(topic_of(f.value, topics), f.topic);
    EXPECT_NE(question_tokens(f).back(), f.value);
  }
  for (const auto& u : c.utterances)
    for (int64_t i = u.begin + 1; i < u.end; ++i) ASSERT_EQ(topic_of(c.tokens[size_t(i)], topics), u.topic);
  EXPECT_EQ(c.utterances.back().end, int64_t(c.tokens.size()));
}

TEST(FidelityConversation, SyntheticHasUniqueKeysInterleavedTopicsAndSpreadQuestions) {
  SyntheticOptions o;
  o.tokens = 8192, o.topics = 8, o.questions = 40;
  const Conversation c = synthetic_conversation(o);
  expect_well_formed(c, o.topics);
  EXPECT_GE(int64_t(c.tokens.size()), o.tokens);
  EXPECT_LT(int64_t(c.tokens.size()), o.tokens + 2 * o.utterance_tokens);
  std::set<int> topics;
  std::vector<int> episode_topics;
  for (const auto& u : c.utterances) {
    topics.insert(u.topic);
    if (episode_topics.empty() || u.episode != int(episode_topics.size()) - 1) episode_topics.push_back(u.topic);
  }
  EXPECT_EQ(topics.size(), 8u);
  EXPECT_GT(episode_topics.size(), 16u) << "topics come back in later episodes";
  ASSERT_EQ(c.questions.size(), 40u);
  // Questions cover every eighth of the history.
  std::set<int64_t> parts;
  for (size_t q : c.questions) parts.insert(c.facts[q].value_pos * 8 / int64_t(c.tokens.size()));
  EXPECT_EQ(parts.size(), 8u);
  // Same seed, same conversation; another seed, another.
  EXPECT_EQ(synthetic_conversation(o).tokens, c.tokens);
  o.seed = 2;
  EXPECT_NE(synthetic_conversation(o).tokens, c.tokens);
}

TEST(FidelityConversation, LocomoPutsOneFactPerQuestionAtItsEvidenceTurn) {
  const nlohmann::json sample = {
      {"sample_id", "conv-x"},
      {"conversation",
       {{"speaker_a", "A"},
        {"speaker_b", "B"},
        {"session_1", {{{"speaker", "A"}, {"dia_id", "D1:1"}, {"text", "hello there how are you"}},
                       {{"speaker", "B"}, {"dia_id", "D1:2"}, {"text", "fine thanks and you my friend"}}}},
        {"session_2", {{{"speaker", "A"}, {"dia_id", "D2:1"}, {"text", "I went hiking in the hills last week"}},
                       {{"speaker", "B"}, {"dia_id", "D2:2"}, {"text", "nice"}}}}}},
      {"qa",
       {{{"question", "q1"}, {"answer", "a"}, {"evidence", {"D2:1"}}, {"category", 4}},
        {{"question", "q2"}, {"answer", "b"}, {"evidence", {"D9:9", "D1:2"}}, {"category", 1}},
        {{"question", "adversarial"}, {"adversarial_answer", "c"}, {"evidence", {"D1:1"}}, {"category", 5}},
        {{"question", "q3"}, {"answer", 2022}, {"evidence", {"D2:1"}}, {"category", 2}}}}};
  const Conversation c = locomo_conversation(sample, 4, 400, 10, 1);
  expect_well_formed(c, 4);
  ASSERT_EQ(c.utterances.size(), 4u);
  EXPECT_EQ(c.facts.size(), 3u) << "one per answerable question with a resolvable evidence turn";
  std::map<size_t, int> per_turn;
  for (const auto& f : c.facts)
    for (size_t u = 0; u < c.utterances.size(); ++u)
      if (f.value_pos >= c.utterances[u].begin && f.value_pos < c.utterances[u].end) ++per_turn[u];
  EXPECT_EQ(per_turn[2], 2);  // D2:1 holds q1's and q3's facts
  EXPECT_EQ(per_turn[1], 1);  // D1:2, q2's first resolvable evidence
  EXPECT_EQ(c.utterances[0].topic, 0);
  EXPECT_EQ(c.utterances[2].topic, 1);  // one topic per session
  EXPECT_NEAR(double(c.tokens.size()), 400.0, 120.0);
  EXPECT_EQ(c.questions.size(), 3u);
  EXPECT_THROW(locomo_conversation({{"conversation", nlohmann::json::object()}, {"qa", nlohmann::json::array()}}, 4,
                                   100, 10, 1),
               std::runtime_error);
}

TEST(FidelityConversation, RealLocomoFileWhenPresent) {
  std::ifstream in(std::string(MNEMO_SOURCE_DIR) + "/../shared/data/convqa/locomo10.json");
  if (!in) GTEST_SKIP() << "../shared/data/convqa/locomo10.json is not on this machine";
  const auto data = nlohmann::json::parse(in);
  const Conversation c = locomo_conversation(data[0], 8, 16384, 64, 1);
  expect_well_formed(c, 8);
  EXPECT_GT(c.facts.size(), 100u);
  EXPECT_EQ(c.questions.size(), 64u);
}

}  // namespace
}  // namespace mnemo::bench::fidelity
