// Store: opening, sessions, and reopening after close.
#include <gtest/gtest.h>

#include <algorithm>

#include "daemon/store/schema.h"
#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

using testing::make_message;
using testing::make_session;
using testing::TempDir;

void expect_same(const SessionRecord& a, const SessionRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.system_prompt, b.system_prompt);
  EXPECT_EQ(a.sampling, b.sampling);
  EXPECT_EQ(a.tools, b.tools);
  EXPECT_EQ(a.metadata, b.metadata);
}

TEST(StoreOpen, CreatesParentDirectoriesInWalModeAtLatestSchema) {
  TempDir dir;
  ASSERT_FALSE(std::filesystem::exists(dir.db().parent_path()));
  auto store = Store::open(dir.db());
  EXPECT_TRUE(std::filesystem::exists(dir.db()));
  EXPECT_EQ(store->journal_mode(), "wal");
  EXPECT_EQ(store->schema_version(), latest_schema_version());
  EXPECT_EQ(store->count_sessions(), 0);
}

TEST(StoreOpen, ProcessDurabilityAlsoOpens) {
  TempDir dir;
  auto store = Store::open(dir.db(), StoreOptions{.durability = Durability::Process});
  store->create_session(make_session("sess_a", 1));
  EXPECT_TRUE(store->get_session("sess_a"));
}

TEST(StoreOpen, NotADatabaseIsAClearError) {
  TempDir dir;
  std::filesystem::create_directories(dir.db().parent_path());
  {
    std::FILE* f = std::fopen(dir.db().c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::string junk(8192, 'x');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  try {
    Store s(dir.db());
    FAIL() << "opened a file that is not a database";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("not a database"), std::string::npos) << e.what();
  }
}

TEST(StoreSessions, CreateGetRoundTrip) {
  TempDir dir;
  auto store = Store::open(dir.db());
  SessionRecord s = make_session("sess_0123456789abcdef", 1700000000000);
  store->create_session(s);
  auto got = store->get_session(s.id);
  ASSERT_TRUE(got);
  s.updated_at = s.created_at;  // 0 on create means created_at
  expect_same(*got, s);
  EXPECT_FALSE(store->get_session("sess_missing"));
}

TEST(StoreSessions, NullJsonFieldsStayNull) {
  TempDir dir;
  auto store = Store::open(dir.db());
  SessionRecord s;
  s.id = "sess_plain";
  s.created_at = 5;
  store->create_session(s);
  auto got = store->get_session("sess_plain");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->sampling.is_null());
  EXPECT_TRUE(got->tools.is_null());
  EXPECT_TRUE(got->metadata.is_null());
  EXPECT_EQ(got->system_prompt, "");
}

TEST(StoreSessions, InvalidUtf8InJsonIsReplacedNotFatal) {
  TempDir dir;
  auto store = Store::open(dir.db());
  SessionRecord s = make_session("sess_utf8", 1);
  s.metadata = {{"note", std::string("ok \xff bad")}};
  store->create_session(s);
  auto got = store->get_session("sess_utf8");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->metadata["note"], "ok \xEF\xBF\xBD bad");
}

TEST(StoreSessions, DuplicateIdIsConflictAndEmptyIdInvalid) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  EXPECT_THROW(store->create_session(make_session("sess_a", 2)), Conflict);
  EXPECT_THROW(store->create_session(make_session("", 2)), InvalidRecord);
  EXPECT_EQ(store->get_session("sess_a")->created_at, 1);
}

TEST(StoreSessions, ListIsOrderedByCreationAndPages) {
  TempDir dir;
  auto store = Store::open(dir.db());
  // Inserted out of order; equal created_at is ordered by id.
  const std::vector<std::pair<std::string, int64_t>> made = {
      {"sess_e", 50}, {"sess_b", 20}, {"sess_d", 30}, {"sess_a", 30}, {"sess_c", 10}};
  for (auto& [id, at] : made) store->create_session(make_session(id, at));
  const std::vector<std::string> want = {"sess_c", "sess_b", "sess_a", "sess_d", "sess_e"};

  std::vector<std::string> all;
  for (auto& s : store->list_sessions(100)) all.push_back(s.id);
  EXPECT_EQ(all, want);

  std::vector<std::string> paged;
  std::optional<std::string> cursor;
  for (int page = 0; page < 10; ++page) {
    auto got = store->list_sessions(2, cursor ? std::optional<std::string_view>(*cursor) : std::nullopt);
    if (got.empty()) break;
    EXPECT_LE(got.size(), 2u);
    for (auto& s : got) paged.push_back(s.id);
    cursor = got.back().id;
  }
  EXPECT_EQ(paged, want);
  EXPECT_TRUE(store->list_sessions(0).empty());
  EXPECT_THROW(store->list_sessions(2, "sess_nope"), NotFound);
  EXPECT_EQ(store->count_sessions(), 5);
}

TEST(StoreSessions, UpdateMetadataAndTouchMoveUpdatedAtForwardOnly) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 100));
  store->update_session_metadata("sess_a", {{"title", "renamed"}}, 200);
  auto s = store->get_session("sess_a");
  EXPECT_EQ(s->metadata, nlohmann::json({{"title", "renamed"}}));
  EXPECT_EQ(s->updated_at, 200);
  store->touch_session("sess_a", 150);  // an older clock reading never moves it back
  EXPECT_EQ(store->get_session("sess_a")->updated_at, 200);
  store->touch_session("sess_a", 300);
  EXPECT_EQ(store->get_session("sess_a")->updated_at, 300);
  EXPECT_THROW(store->touch_session("sess_x", 1), NotFound);
  EXPECT_THROW(store->update_session_metadata("sess_x", nullptr, 1), NotFound);
}

TEST(StoreSessions, DeleteUnknownIsNotFound) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  store->delete_session("sess_a");
  EXPECT_FALSE(store->get_session("sess_a"));
  EXPECT_THROW(store->delete_session("sess_a"), NotFound);
}

TEST(StoreSessions, EpisodeIndexReplacedWholeSurvivesReopenAndGoesWithItsSession) {
  TempDir dir;
  {
    auto store = Store::open(dir.db());
    store->create_session(make_session("sess_a", 1));
    EXPECT_FALSE(store->get_session_episodes("sess_a"));
    store->put_session_episodes("sess_a", {{"windows", 3}}, 10);
    store->put_session_episodes("sess_a", {{"windows", 5}}, 20);
    EXPECT_THROW(store->put_session_episodes("sess_x", {{"windows", 1}}, 30), NotFound);
    EXPECT_THROW(store->put_session_episodes("sess_a", nullptr, 30), InvalidRecord);
  }
  auto store = Store::open(dir.db());
  auto got = store->get_session_episodes("sess_a");
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, nlohmann::ordered_json({{"windows", 5}}));
  store->delete_session("sess_a");
  store->create_session(make_session("sess_a", 2));  // the same id again starts without episodes
  EXPECT_FALSE(store->get_session_episodes("sess_a"));
}

TEST(StoreReopen, EverythingSurvivesCloseAndReopen) {
  TempDir dir;
  int64_t turn_id = 0;
  {
    auto store = Store::open(dir.db());
    store->create_session(make_session("sess_a", 10));
    store->create_session(make_session("sess_b", 20));
    store->append_message("sess_a", make_message(Role::User, "hello", 11));
    store->append_message("sess_a", make_message(Role::Assistant, "hi", 12));
    store->begin_program(ProgramRecord{.id = "prog_1", .session_id = "sess_a", .job_id = "job_9", .started_at = 13});
    store->start_tool_call(ToolCallRecord{.id = "call_1", .program_id = "prog_1", .session_id = "sess_a",
                                          .name = "search", .arguments = {{"q", "x"}}, .started_at = 14});
    store->end_tool_call("call_1", 64, ToolStatus::Ok, "found");
    turn_id = store->record_turn(TurnRecord{.program_id = "prog_1", .job_id = "job_9", .started_at = 13});
    store->end_program("prog_1", 70);
  }
  auto store = Store::open(dir.db());
  EXPECT_EQ(store->count_sessions(), 2);
  auto h = store->history("sess_a");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].content, "hello");
  EXPECT_EQ(h[1].content, "hi");
  EXPECT_EQ(store->get_session("sess_a")->updated_at, 12);
  EXPECT_EQ(store->get_program("prog_1")->ended_at, 70);
  EXPECT_EQ(store->tool_durations("search", 10), std::vector<int64_t>{50});
  auto turns = store->program_turns("prog_1");
  ASSERT_EQ(turns.size(), 1u);
  EXPECT_EQ(turns[0].id, turn_id);
  // Sequence numbers continue after a restart.
  EXPECT_EQ(store->append_message("sess_a", make_message(Role::User, "again", 80)), 3);
}

}  // namespace
}  // namespace mnemo::daemon::store
