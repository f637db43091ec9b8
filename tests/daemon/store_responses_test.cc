// Store: Responses API responses, their message ranges, forks.
#include <gtest/gtest.h>

#include "daemon/store/errors.h"
#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

using testing::make_message;
using testing::make_session;
using testing::TempDir;

ResponseRecord response(const std::string& id, const std::string& session, std::optional<std::string> previous = {}) {
  ResponseRecord r;
  r.id = id;
  r.session_id = session;
  r.previous_id = std::move(previous);
  r.created_at = 5;
  r.json = {{"id", id}, {"object", "response"}, {"status", "completed"}};
  return r;
}

TEST(StoreResponses, SaveRecordsInputAndOutputRangesInOneWrite) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  store->append_message("sess_a", make_message(Role::User, "before", 2));
  const MessageRecord in[] = {make_message(Role::User, "hi", 3), make_message(Role::User, "there", 3)};
  const MessageRecord out[] = {make_message(Role::Assistant, "hello", 4)};
  auto r = response("resp_1", "sess_a");
  store->save_response(r, in, out);
  EXPECT_EQ(r.input_from, 2);
  EXPECT_EQ(r.output_from, 4);
  EXPECT_EQ(r.output_to, 5);
  EXPECT_EQ(store->message_count("sess_a"), 4);

  const auto got = store->get_response("resp_1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->session_id, "sess_a");
  EXPECT_FALSE(got->previous_id);
  EXPECT_EQ(got->input_from, 2);
  EXPECT_EQ(got->output_to, 5);
  EXPECT_EQ(got->json, r.json);
  EXPECT_EQ(store->history("sess_a")[3].content, "hello");

  // The chain continues: no input messages is fine too.
  auto next = response("resp_2", "sess_a", "resp_1");
  store->save_response(next, {}, out);
  EXPECT_EQ(next.input_from, 5);
  EXPECT_EQ(next.output_from, 5);
  EXPECT_EQ(store->get_response("resp_2")->previous_id, "resp_1");
}

TEST(StoreResponses, AFailedSaveLeavesNothing) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  auto r = response("resp_1", "sess_a");
  const MessageRecord in[] = {make_message(Role::User, "hi", 3)};
  store->save_response(r, in, {});
  // The same id again: the messages it would have added are rolled back.
  auto again = response("resp_1", "sess_a");
  EXPECT_ANY_THROW(store->save_response(again, in, in));
  EXPECT_EQ(store->message_count("sess_a"), 1);
  auto nowhere = response("resp_2", "sess_missing");
  EXPECT_THROW(store->save_response(nowhere, in, {}), NotFound);
}

TEST(StoreResponses, DeleteRemovesTheRecordOnly) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  auto r = response("resp_1", "sess_a");
  const MessageRecord in[] = {make_message(Role::User, "hi", 3)};
  store->save_response(r, in, {});
  store->delete_response("resp_1");
  EXPECT_FALSE(store->get_response("resp_1"));
  EXPECT_EQ(store->message_count("sess_a"), 1);
  EXPECT_THROW(store->delete_response("resp_1"), NotFound);
  // Deleting the session takes its responses with it.
  auto r2 = response("resp_2", "sess_a");
  store->save_response(r2, in, {});
  store->delete_session("sess_a");
  EXPECT_FALSE(store->get_response("resp_2"));
}

TEST(StoreResponses, ForkCopiesTheMessagesBeforeASeq) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  for (int i = 0; i < 4; ++i) store->append_message("sess_a", make_message(Role::User, "m" + std::to_string(i), 2));
  store->fork_session(make_session("sess_b", 3), "sess_a", 3);
  const auto h = store->history("sess_b");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].content, "m0");
  EXPECT_EQ(h[1].content, "m1");
  EXPECT_EQ(store->message_count("sess_a"), 4);
  EXPECT_EQ(store->append_message("sess_b", make_message(Role::User, "next", 4)), 3);
}

}  // namespace
}  // namespace mnemo::daemon::store
