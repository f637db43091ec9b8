#include <gtest/gtest.h>

#include "memory/episodes/segment.h"

namespace mnemo::memory::episodes {
namespace {

TEST(EpisodesSegment, SplitsSentencesAtTerminatorsAndLineBreaks) {
  EXPECT_EQ(split_sentences("Hello there. How are you?  I'm fine!"),
            (std::vector<std::string>{"Hello there.", "How are you?", "I'm fine!"}));
  // A terminator not followed by whitespace is not a boundary (numbers, abbreviations).
  EXPECT_EQ(split_sentences("Pi is 3.14 today, e.g.here. Next"),
            (std::vector<std::string>{"Pi is 3.14 today, e.g.here.", "Next"}));
  // Runs of terminators and closing quotes stay with their sentence.
  EXPECT_EQ(split_sentences("Really?!\" she said.\nNew line"),
            (std::vector<std::string>{"Really?!\"", "she said.", "New line"}));
  EXPECT_TRUE(split_sentences("   \n ").empty());
}

TEST(EpisodesSegment, WindowsOfFourUtterances) {
  std::vector<Utterance> u;
  for (int i = 0; i < 10; ++i) u.push_back({i % 2 ? "Bob" : "Ann", "line " + std::to_string(i)});
  const auto w = segment_windows(u);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].first_utterance, 0u);
  EXPECT_EQ(w[0].end_utterance, 4u);
  EXPECT_EQ(w[1].first_utterance, 4u);
  EXPECT_EQ(w[2].first_utterance, 8u);
  EXPECT_EQ(w[2].end_utterance, 10u);  // the short tail is kept: its turns must be covered
  EXPECT_EQ(w[0].text, "Ann said, \"line 0\"\nBob said, \"line 1\"\nAnn said, \"line 2\"\nBob said, \"line 3\"");
  SegmenterOptions two{.window = 2, .long_message_chars = 1000};
  EXPECT_EQ(segment_windows(u, two).size(), 5u);
}

TEST(EpisodesSegment, LongMessageSplitIntoSentencesSpansWindows) {
  std::vector<Utterance> u = {{"Ann", "Short."}, {"Bob", "One. Two. Three."}, {"Ann", "Last."}};
  SegmenterOptions o{.window = 2, .long_message_chars = 10};
  const auto w = segment_windows(u, o);
  // Units: Ann:Short, Bob:One, Bob:Two, Bob:Three, Ann:Last.
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].text, "Ann said, \"Short.\"\nBob said, \"One.\"");
  EXPECT_EQ(w[0].first_utterance, 0u);
  EXPECT_EQ(w[0].end_utterance, 2u);
  EXPECT_EQ(w[1].first_utterance, 1u);  // the rest of Bob's message
  EXPECT_EQ(w[1].end_utterance, 2u);
  EXPECT_EQ(w[2].first_utterance, 2u);
  // Below the threshold nothing is split.
  EXPECT_EQ(segment_windows(u, {.window = 2, .long_message_chars = 100}).size(), 2u);
}

TEST(EpisodesSegment, TokenWindowsConcatenateUtterances) {
  std::vector<std::vector<int32_t>> u = {{1, 2}, {3}, {4, 5, 6}};
  const auto w = segment_token_windows(u, 2);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(w[1].tokens, (std::vector<int32_t>{4, 5, 6}));
  EXPECT_EQ(w[1].first_utterance, 2u);
  EXPECT_TRUE(w[0].text.empty());
}

TEST(EpisodesSegment, TimeChunksAreContiguousAndBalanced) {
  EXPECT_EQ(time_chunk_assignment(10, 4), (std::vector<int32_t>{0, 0, 0, 1, 1, 2, 2, 2, 3, 3}));
  EXPECT_EQ(time_chunk_assignment(3, 8), (std::vector<int32_t>{0, 1, 2}));  // E capped at the windows
  EXPECT_TRUE(time_chunk_assignment(0, 4).empty());
}

}  // namespace
}  // namespace mnemo::memory::episodes
