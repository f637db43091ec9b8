// Store: messages of a session.
#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

using testing::make_message;
using testing::make_session;
using testing::TempDir;

TEST(StoreRoles, NamesRoundTripAndUnknownIsInvalid) {
  for (Role r : {Role::System, Role::User, Role::Assistant, Role::Tool}) EXPECT_EQ(parse_role(role_name(r)), r);
  EXPECT_THROW(parse_role("developer"), InvalidRecord);
  for (ToolStatus s : {ToolStatus::Ok, ToolStatus::Error}) EXPECT_EQ(parse_tool_status(tool_status_name(s)), s);
  EXPECT_THROW(parse_tool_status("timeout"), InvalidRecord);
}

TEST(StoreMessages, SequenceNumbersCountPerSession) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  store->create_session(make_session("sess_b", 2));
  EXPECT_EQ(store->append_message("sess_a", make_message(Role::User, "a1", 3)), 1);
  EXPECT_EQ(store->append_message("sess_b", make_message(Role::User, "b1", 4)), 1);
  EXPECT_EQ(store->append_message("sess_a", make_message(Role::Assistant, "a2", 5)), 2);
  EXPECT_EQ(store->append_message("sess_a", make_message(Role::User, "a3", 6)), 3);
  EXPECT_EQ(store->message_count("sess_a"), 3);
  EXPECT_EQ(store->message_count("sess_b"), 1);
  auto h = store->history("sess_a");
  ASSERT_EQ(h.size(), 3u);
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(h[i].content, "a" + std::to_string(i + 1));
  }
}

TEST(StoreMessages, EveryFieldRoundTrips) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));

  MessageRecord sys = make_message(Role::System, "be brief", 2);
  MessageRecord call = make_message(Role::Assistant, "", 3);
  call.tool_calls = nlohmann::json::array(
      {{{"id", "call_1"}, {"type", "function"}, {"function", {{"name", "add"}, {"arguments", "{\"a\":1}"}}}}});
  call.usage = {{"prompt_tokens", 12}, {"completion_tokens", 7}, {"cached_tokens", 4}};
  MessageRecord result = make_message(Role::Tool, "2", 4);
  result.tool_call_id = "call_1";
  result.name = "add";
  MessageRecord unicode = make_message(Role::User, "h\xc3\xa9llo \xf0\x9f\x99\x82 with\nnewline", 5);

  for (auto* m : {&sys, &call, &result, &unicode}) store->append_message("sess_a", *m);
  auto h = store->history("sess_a");
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].role, Role::System);
  EXPECT_EQ(h[0].content, "be brief");
  EXPECT_TRUE(h[0].tool_calls.is_null());
  EXPECT_FALSE(h[0].tool_call_id);
  EXPECT_FALSE(h[0].name);
  EXPECT_TRUE(h[0].usage.is_null());
  EXPECT_EQ(h[1].role, Role::Assistant);
  EXPECT_EQ(h[1].tool_calls, call.tool_calls);
  EXPECT_EQ(h[1].usage, call.usage);
  EXPECT_EQ(h[1].created_at, 3);
  EXPECT_EQ(h[2].role, Role::Tool);
  EXPECT_EQ(h[2].tool_call_id, "call_1");
  EXPECT_EQ(h[2].name, "add");
  EXPECT_EQ(h[3].content, unicode.content);
}

TEST(StoreMessages, UnknownSessionIsNotFound) {
  TempDir dir;
  auto store = Store::open(dir.db());
  EXPECT_THROW(store->append_message("sess_x", make_message(Role::User, "hi", 1)), NotFound);
  EXPECT_THROW(store->history("sess_x"), NotFound);
  EXPECT_THROW(store->message_count("sess_x"), NotFound);
  try {
    store->append_message("sess_x", make_message(Role::User, "hi", 1));
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("sess_x"), std::string::npos);
  }
}

TEST(StoreMessages, ToolCallsMustBeAnArray) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  MessageRecord m = make_message(Role::Assistant, "", 2);
  m.tool_calls = {{"id", "call_1"}};
  EXPECT_THROW(store->append_message("sess_a", m), InvalidRecord);
  EXPECT_EQ(store->message_count("sess_a"), 0);
}

TEST(StoreMessages, AppendBumpsSessionUpdatedAt) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 100));
  store->append_message("sess_a", make_message(Role::User, "hi", 250));
  EXPECT_EQ(store->get_session("sess_a")->updated_at, 250);
}

// The seqs of one page read backwards, as history_before hands them out.
std::vector<int64_t> page(Store& store, std::string_view session, int64_t before_seq, size_t limit) {
  std::vector<int64_t> seqs;
  store.history_before(session, before_seq, limit, [&](MessageRecord&& m) {
    seqs.push_back(m.seq);
    return true;
  });
  return seqs;
}

TEST(StoreMessages, HistoryBeforeReadsNewestFirstBelowTheBound) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  store->create_session(make_session("sess_b", 1));
  for (int i = 1; i <= 7; ++i) store->append_message("sess_a", make_message(Role::User, "a" + std::to_string(i), i));
  store->append_message("sess_b", make_message(Role::User, "b1", 1));

  EXPECT_EQ(page(*store, "sess_a", INT64_MAX, 3), (std::vector<int64_t>{7, 6, 5}));
  EXPECT_EQ(page(*store, "sess_a", 5, 3), (std::vector<int64_t>{4, 3, 2}));
  EXPECT_EQ(page(*store, "sess_a", 2, 3), (std::vector<int64_t>{1}));  // a short last page
  EXPECT_EQ(page(*store, "sess_a", 1, 3), (std::vector<int64_t>{}));
  EXPECT_EQ(page(*store, "sess_a", INT64_MAX, 100).size(), 7u);  // other sessions' rows stay out
  EXPECT_EQ(page(*store, "sess_a", INT64_MAX, 0), (std::vector<int64_t>{}));

  // Following the oldest seq of each page walks the whole history once.
  std::vector<int64_t> all;
  for (int64_t before = INT64_MAX;;) {
    auto p = page(*store, "sess_a", before, 2);
    if (p.empty()) break;
    all.insert(all.begin(), p.rbegin(), p.rend());
    before = p.back();
  }
  EXPECT_EQ(all, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
}

TEST(StoreMessages, HistoryBeforeStopsWhenTheReaderIsFull) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  MessageRecord call = make_message(Role::Assistant, "", 2);
  call.tool_calls = nlohmann::json::array({{{"id", "call_1"}, {"name", "add"}}});
  store->append_message("sess_a", make_message(Role::User, "first", 1));
  store->append_message("sess_a", call);
  store->append_message("sess_a", make_message(Role::User, "last", 3));

  std::vector<MessageRecord> got;
  store->history_before("sess_a", INT64_MAX, 10, [&](MessageRecord&& m) {
    got.push_back(std::move(m));
    return got.size() < 2;
  });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].content, "last");
  EXPECT_EQ(got[1].tool_calls, call.tool_calls);  // every field as history() reads it
  EXPECT_EQ(got[1].role, Role::Assistant);
  // The read snapshot is gone: writes go on.
  EXPECT_EQ(store->append_message("sess_a", make_message(Role::User, "after", 4)), 4);
}

TEST(StoreMessages, HistoryBeforeOfAnUnknownSessionIsNotFound) {
  TempDir dir;
  auto store = Store::open(dir.db());
  EXPECT_THROW(page(*store, "sess_x", INT64_MAX, 10), NotFound);
}

}  // namespace
}  // namespace mnemo::daemon::store
