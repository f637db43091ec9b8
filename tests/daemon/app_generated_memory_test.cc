// GeneratedMemory: finds an assistant message's generated tokens only as it
// was returned (content, call ids, names, arguments) and for the same
// tenant; stays within its entry and token bounds, least recent out first.
#include <gtest/gtest.h>

#include "daemon/app/generated_memory.h"

namespace mnemo::daemon::app {
namespace {

engine::ChatMessage assistant(std::string content, std::vector<engine::ToolCall> calls = {}) {
  engine::ChatMessage m;
  m.role = "assistant";
  m.content = std::move(content);
  m.tool_calls = std::move(calls);
  return m;
}

TEST(GeneratedMemory, FindsAMessageOnlyAsItWasReturned) {
  GeneratedMemory mem;
  const std::vector<engine::ToolCall> calls = {{"call_1", "calc", R"({"expr": "1+1"})"}};
  mem.remember(7, "", calls, {5, 6, 7});
  auto t = mem.find(7, assistant("", calls));
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_FALSE(mem.find(8, assistant("", calls))) << "another tenant's salt";
  EXPECT_FALSE(mem.find(7, assistant("x", calls))) << "content edited";
  EXPECT_FALSE(mem.find(7, assistant("", {{"call_2", "calc", R"({"expr": "1+1"})"}}))) << "another call id";
  EXPECT_FALSE(mem.find(7, assistant("", {{"call_1", "calc", R"({"expr":"1+1"})"}}))) << "arguments re-serialised";
  EXPECT_FALSE(mem.find(7, assistant(""))) << "the call dropped";
  engine::ChatMessage user = assistant("", calls);
  user.role = "user";
  EXPECT_FALSE(mem.find(7, user));
}

TEST(GeneratedMemory, FieldsCannotBeShiftedIntoACollision) {
  GeneratedMemory mem;
  mem.remember(1, "ab", {{"c", "n", "{}"}}, {1});
  EXPECT_FALSE(mem.find(1, assistant("a", {{"bc", "n", "{}"}})));
  EXPECT_TRUE(mem.find(1, assistant("ab", {{"c", "n", "{}"}})));
}

TEST(GeneratedMemory, BoundedByEntriesAndTokensLeastRecentFirst) {
  GeneratedMemory mem({.max_entries = 3, .max_tokens = 10, .max_key_bytes = 64});
  mem.remember(0, "a", {}, {1, 1});
  mem.remember(0, "b", {}, {2, 2});
  mem.remember(0, "c", {}, {3, 3});
  ASSERT_TRUE(mem.find(0, assistant("a")));  // now the most recent
  mem.remember(0, "d", {}, {4, 4});
  EXPECT_EQ(mem.entries(), 3u);
  EXPECT_FALSE(mem.find(0, assistant("b")));
  EXPECT_TRUE(mem.find(0, assistant("a")));
  mem.remember(0, "e", {}, std::vector<int32_t>(7, 5));  // 2 + 2 + 2 + 7 > 10
  EXPECT_LE(mem.tokens(), 10u);
  EXPECT_TRUE(mem.find(0, assistant("e")));
  mem.remember(0, "huge", {}, std::vector<int32_t>(11, 6));
  EXPECT_FALSE(mem.find(0, assistant("huge"))) << "longer than the whole budget";
  mem.remember(0, std::string(100, 'k'), {}, {1});
  EXPECT_FALSE(mem.find(0, assistant(std::string(100, 'k')))) << "key over max_key_bytes";
  mem.remember(0, "e", {}, {9});  // the same message again replaces its tokens
  EXPECT_EQ(*mem.find(0, assistant("e")), (std::vector<int32_t>{9}));
  EXPECT_LE(mem.entries(), 3u);
}

}  // namespace
}  // namespace mnemo::daemon::app
