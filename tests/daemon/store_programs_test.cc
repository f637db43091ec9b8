// Store: programs, tool calls, turns, and what deleting a session removes.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

using testing::make_message;
using testing::make_session;
using testing::TempDir;

ToolCallRecord call(const std::string& id, const std::string& name, int64_t started_at,
                    std::optional<std::string> program = std::nullopt) {
  return ToolCallRecord{.id = id, .program_id = std::move(program), .name = name, .started_at = started_at};
}

TEST(StorePrograms, BeginEndGetRoundTrip) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  ProgramRecord p{.id = "prog_1", .session_id = "sess_a", .job_id = "job_7", .started_at = 10,
                  .metadata = {{"agent", "swe"}}};
  store->begin_program(p);
  auto got = store->get_program("prog_1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->session_id, "sess_a");
  EXPECT_EQ(got->job_id, "job_7");
  EXPECT_EQ(got->started_at, 10);
  EXPECT_FALSE(got->ended_at);
  EXPECT_EQ(got->metadata, p.metadata);
  store->end_program("prog_1", 42);
  EXPECT_EQ(store->get_program("prog_1")->ended_at, 42);

  // A program from plain HTTP has no session.
  store->begin_program(ProgramRecord{.id = "prog_2", .started_at = 11});
  got = store->get_program("prog_2");
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->session_id);
  EXPECT_FALSE(got->job_id);
  EXPECT_TRUE(got->metadata.is_null());
  EXPECT_FALSE(store->get_program("prog_x"));
}

TEST(StorePrograms, ErrorsAreTyped) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  EXPECT_THROW(store->begin_program(ProgramRecord{.id = "prog_1", .session_id = "sess_x", .started_at = 1}), NotFound);
  EXPECT_FALSE(store->get_program("prog_1"));
  store->begin_program(ProgramRecord{.id = "prog_1", .session_id = "sess_a", .started_at = 10});
  EXPECT_THROW(store->begin_program(ProgramRecord{.id = "prog_1", .started_at = 2}), Conflict);
  EXPECT_THROW(store->begin_program(ProgramRecord{.id = "", .started_at = 2}), InvalidRecord);
  EXPECT_THROW(store->end_program("prog_x", 20), NotFound);
  EXPECT_THROW(store->end_program("prog_1", 9), InvalidRecord);
  store->end_program("prog_1", 20);
  EXPECT_THROW(store->end_program("prog_1", 30), Conflict);
  EXPECT_EQ(store->get_program("prog_1")->ended_at, 20);
  EXPECT_THROW(store->session_programs("sess_x"), NotFound);
}

TEST(StorePrograms, ListedByStartAndFoundByJob) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  store->create_session(make_session("sess_b", 1));
  store->begin_program(ProgramRecord{.id = "p3", .session_id = "sess_a", .job_id = "job", .started_at = 30});
  store->begin_program(ProgramRecord{.id = "p1", .session_id = "sess_a", .job_id = "job", .started_at = 10});
  store->begin_program(ProgramRecord{.id = "p2", .session_id = "sess_a", .started_at = 20});
  store->begin_program(ProgramRecord{.id = "pb", .session_id = "sess_b", .job_id = "other", .started_at = 40});
  std::vector<std::string> ids;
  for (auto& p : store->session_programs("sess_a")) ids.push_back(p.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"p1", "p2", "p3"}));
  EXPECT_EQ(store->find_program_by_job("job")->id, "p3");  // the latest started
  EXPECT_EQ(store->find_program_by_job("other")->id, "pb");
  EXPECT_FALSE(store->find_program_by_job("none"));
}

TEST(StoreToolCalls, StartEndRoundTrip) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->create_session(make_session("sess_a", 1));
  store->begin_program(ProgramRecord{.id = "prog_1", .session_id = "sess_a", .started_at = 5});
  ToolCallRecord c{.id = "call_1", .program_id = "prog_1", .session_id = "sess_a", .name = "grep",
                   .arguments = {{"pattern", "TODO"}, {"path", "."}}, .started_at = 100};
  store->start_tool_call(c);
  auto got = store->get_tool_call("call_1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->program_id, "prog_1");
  EXPECT_EQ(got->session_id, "sess_a");
  EXPECT_EQ(got->name, "grep");
  EXPECT_EQ(got->arguments, c.arguments);
  EXPECT_EQ(got->started_at, 100);
  EXPECT_FALSE(got->ended_at);
  EXPECT_FALSE(got->status);
  EXPECT_FALSE(got->result);
  store->end_tool_call("call_1", 350, ToolStatus::Error, "exit 2");
  got = store->get_tool_call("call_1");
  EXPECT_EQ(got->ended_at, 350);
  EXPECT_EQ(got->status, ToolStatus::Error);
  EXPECT_EQ(got->result, "exit 2");
  EXPECT_FALSE(store->get_tool_call("call_x"));
}

TEST(StoreToolCalls, ErrorsAreTyped) {
  TempDir dir;
  auto store = Store::open(dir.db());
  EXPECT_THROW(store->start_tool_call(call("c1", "grep", 1, "prog_x")), NotFound);
  EXPECT_THROW(store->start_tool_call(ToolCallRecord{.id = "c1", .session_id = "sess_x", .name = "grep"}), NotFound);
  EXPECT_THROW(store->start_tool_call(call("", "grep", 1)), InvalidRecord);
  EXPECT_THROW(store->start_tool_call(call("c1", "", 1)), InvalidRecord);
  store->start_tool_call(call("c1", "grep", 10));
  EXPECT_THROW(store->start_tool_call(call("c1", "grep", 10)), Conflict);
  EXPECT_THROW(store->end_tool_call("c_x", 20, ToolStatus::Ok, ""), NotFound);
  EXPECT_THROW(store->end_tool_call("c1", 5, ToolStatus::Ok, ""), InvalidRecord);
  store->end_tool_call("c1", 20, ToolStatus::Ok, "");
  EXPECT_THROW(store->end_tool_call("c1", 30, ToolStatus::Ok, ""), Conflict);
  EXPECT_EQ(store->get_tool_call("c1")->ended_at, 20);
}

TEST(StoreToolCalls, DurationsPerToolNewestFirst) {
  TempDir dir;
  auto store = Store::open(dir.db());
  // grep: ends at 110, 230, 390 with durations 10, 30, 90; one still running.
  store->start_tool_call(call("g1", "grep", 100));
  store->start_tool_call(call("g2", "grep", 200));
  store->start_tool_call(call("g3", "grep", 300));
  store->start_tool_call(call("g4", "grep", 400));
  store->start_tool_call(call("s1", "sleep", 0));
  store->end_tool_call("g2", 230, ToolStatus::Ok, "");
  store->end_tool_call("g3", 390, ToolStatus::Error, "");
  store->end_tool_call("g1", 110, ToolStatus::Ok, "");
  store->end_tool_call("s1", 5000, ToolStatus::Ok, "");
  EXPECT_EQ(store->tool_durations("grep", 10), (std::vector<int64_t>{90, 30, 10}));
  EXPECT_EQ(store->tool_durations("grep", 2), (std::vector<int64_t>{90, 30}));
  EXPECT_EQ(store->tool_durations("sleep", 10), (std::vector<int64_t>{5000}));
  EXPECT_TRUE(store->tool_durations("grep", 0).empty());
  EXPECT_TRUE(store->tool_durations("nope", 10).empty());
  EXPECT_EQ(store->tool_names(), (std::vector<std::string>{"grep", "sleep"}));
}

TEST(StoreTurns, RecordEndAndList) {
  TempDir dir;
  auto store = Store::open(dir.db());
  store->begin_program(ProgramRecord{.id = "prog_1", .job_id = "job_1", .started_at = 0});
  int64_t t1 = store->record_turn(TurnRecord{.program_id = "prog_1", .job_id = "job_1", .this_func_call = "grep",
                                             .started_at = 10});
  int64_t t2 = store->record_turn(TurnRecord{.program_id = "prog_1", .job_id = "job_1", .is_last_step = true,
                                             .last_func_call = "grep", .started_at = 50});
  EXPECT_LT(t1, t2);
  store->end_turn(t1, 20);
  EXPECT_THROW(store->end_turn(t1, 30), Conflict);
  EXPECT_THROW(store->end_turn(t2, 40), InvalidRecord);
  EXPECT_THROW(store->end_turn(t2 + 100, 40), NotFound);
  auto turns = store->program_turns("prog_1");
  ASSERT_EQ(turns.size(), 2u);
  EXPECT_EQ(turns[0].id, t1);
  EXPECT_EQ(turns[0].this_func_call, "grep");
  EXPECT_FALSE(turns[0].last_func_call);
  EXPECT_FALSE(turns[0].is_last_step);
  EXPECT_EQ(turns[0].ended_at, 20);
  EXPECT_EQ(turns[1].id, t2);
  EXPECT_TRUE(turns[1].is_last_step);
  EXPECT_EQ(turns[1].last_func_call, "grep");
  EXPECT_FALSE(turns[1].this_func_call);
  EXPECT_EQ(turns[1].job_id, "job_1");
  EXPECT_FALSE(turns[1].ended_at);
  EXPECT_THROW(store->record_turn(TurnRecord{.program_id = "prog_x", .started_at = 1}), NotFound);
  EXPECT_THROW(store->program_turns("prog_x"), NotFound);
}

int64_t count_rows(const std::filesystem::path& db, const std::string& table) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(h, ("SELECT count(*) FROM " + table).c_str(), -1, &st, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return n;
}

TEST(StoreCascade, DeletingASessionRemovesEverythingOfIt) {
  TempDir dir;
  auto store = Store::open(dir.db());
  for (std::string s : {"sess_a", "sess_b"}) {
    store->create_session(make_session(s, 1));
    store->append_message(s, make_message(Role::User, "q", 2));
    store->append_message(s, make_message(Role::Assistant, "a", 3));
    store->begin_program(ProgramRecord{.id = "prog_" + s, .session_id = s, .started_at = 4});
    store->start_tool_call(ToolCallRecord{.id = "call_p_" + s, .program_id = "prog_" + s, .name = "t", .started_at = 5});
    store->start_tool_call(ToolCallRecord{.id = "call_s_" + s, .session_id = s, .name = "t", .started_at = 5});
    store->record_turn(TurnRecord{.program_id = "prog_" + s, .started_at = 4});
  }
  store->delete_session("sess_a");

  EXPECT_FALSE(store->get_session("sess_a"));
  EXPECT_THROW(store->history("sess_a"), NotFound);
  EXPECT_FALSE(store->get_program("prog_sess_a"));
  EXPECT_FALSE(store->get_tool_call("call_p_sess_a"));
  EXPECT_FALSE(store->get_tool_call("call_s_sess_a"));
  EXPECT_THROW(store->program_turns("prog_sess_a"), NotFound);
  // The other session is untouched, and no orphan rows remain.
  EXPECT_EQ(store->message_count("sess_b"), 2);
  EXPECT_TRUE(store->get_program("prog_sess_b"));
  EXPECT_TRUE(store->get_tool_call("call_p_sess_b"));
  EXPECT_TRUE(store->get_tool_call("call_s_sess_b"));
  EXPECT_EQ(store->program_turns("prog_sess_b").size(), 1u);
  EXPECT_EQ(count_rows(dir.db(), "messages"), 2);
  EXPECT_EQ(count_rows(dir.db(), "programs"), 1);
  EXPECT_EQ(count_rows(dir.db(), "tool_calls"), 2);
  EXPECT_EQ(count_rows(dir.db(), "turns"), 1);
}

}  // namespace
}  // namespace mnemo::daemon::store
