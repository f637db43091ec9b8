// Store: versioned schema. Old databases are built here by hand with the SQL
// that version 1 shipped, so a later edit of the migration code cannot make
// the test agree with it by accident.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "daemon/store/schema.h"
#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

using testing::make_message;
using testing::TempDir;

constexpr const char* kV1Schema = R"sql(
CREATE TABLE sessions (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  model TEXT NOT NULL DEFAULT '', system_prompt TEXT NOT NULL DEFAULT '', sampling TEXT, tools TEXT, metadata TEXT);
CREATE INDEX sessions_by_creation ON sessions (created_at, id);
CREATE TABLE messages (session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')), content TEXT NOT NULL,
  tool_calls TEXT, tool_call_id TEXT, name TEXT, created_at INTEGER NOT NULL, usage TEXT,
  PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
CREATE TABLE programs (id TEXT PRIMARY KEY, session_id TEXT REFERENCES sessions (id) ON DELETE CASCADE,
  job_id TEXT, started_at INTEGER NOT NULL, ended_at INTEGER, metadata TEXT);
CREATE INDEX programs_by_session ON programs (session_id, started_at);
CREATE TABLE tool_calls (id TEXT PRIMARY KEY, program_id TEXT REFERENCES programs (id) ON DELETE CASCADE,
  session_id TEXT REFERENCES sessions (id) ON DELETE CASCADE, name TEXT NOT NULL, arguments TEXT,
  started_at INTEGER NOT NULL, ended_at INTEGER, status TEXT CHECK (status IN ('ok', 'error')), result TEXT);
CREATE INDEX tool_calls_by_program ON tool_calls (program_id);
CREATE INDEX tool_calls_by_session ON tool_calls (session_id);
)sql";

constexpr const char* kV1Rows = R"sql(
INSERT INTO sessions VALUES ('sess_old', 100, 120, 'm', 'sys', '{"temperature":0.2}', NULL, '{"k":1}');
INSERT INTO messages VALUES ('sess_old', 1, 'user', 'first', NULL, NULL, NULL, 110, NULL);
INSERT INTO messages VALUES ('sess_old', 2, 'assistant', 'second', NULL, NULL, NULL, 120, '{"completion_tokens":3}');
INSERT INTO programs VALUES ('prog_old', 'sess_old', 'job_old', 105, NULL, NULL);
INSERT INTO tool_calls VALUES ('call_old', 'prog_old', 'sess_old', 'grep', '{}', 111, 151, 'ok', 'r');
)sql";

// Runs SQL on a raw connection, outside the Store.
void raw_exec(const std::filesystem::path& db, const std::string& sql) {
  std::filesystem::create_directories(db.parent_path());
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

// The first column of the first row of a query, on a raw connection.
int64_t raw_count(const std::filesystem::path& db, const char* sql) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(h, sql, -1, &st, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

int raw_user_version(const std::filesystem::path& db) {
  return static_cast<int>(raw_count(db, "PRAGMA user_version"));
}

TEST(StoreSchema, StepsAreNumberedOneByOne) {
  auto steps = migrations();
  ASSERT_FALSE(steps.empty());
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i].version, static_cast<int>(i + 1));
  EXPECT_EQ(latest_schema_version(), steps.back().version);
  EXPECT_GE(latest_schema_version(), 2);
}

TEST(StoreSchema, VersionOneDatabaseIsMigratedKeepingItsRows) {
  TempDir dir;
  raw_exec(dir.db(), std::string(kV1Schema) + kV1Rows + "PRAGMA user_version = 1;");
  auto store = Store::open(dir.db());
  EXPECT_EQ(store->schema_version(), latest_schema_version());
  EXPECT_EQ(store->journal_mode(), "wal");

  auto s = store->get_session("sess_old");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->sampling, nlohmann::json({{"temperature", 0.2}}));
  auto h = store->history("sess_old");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].content, "second");
  EXPECT_EQ(h[1].usage, nlohmann::json({{"completion_tokens", 3}}));
  EXPECT_EQ(store->find_program_by_job("job_old")->id, "prog_old");
  EXPECT_EQ(store->tool_durations("grep", 5), std::vector<int64_t>{40});
  // What version 2 added works on the migrated file.
  int64_t t = store->record_turn(TurnRecord{.program_id = "prog_old", .is_last_step = true, .started_at = 160});
  EXPECT_EQ(store->program_turns("prog_old").at(0).id, t);
  EXPECT_EQ(store->append_message("sess_old", make_message(Role::User, "third", 170)), 3);
}

// Version 2 as it shipped: turns and three indexes.
constexpr const char* kV2Schema = R"sql(
CREATE TABLE turns (id INTEGER PRIMARY KEY, program_id TEXT NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
  job_id TEXT, is_last_step INTEGER NOT NULL DEFAULT 0, this_func_call TEXT, last_func_call TEXT,
  started_at INTEGER NOT NULL, ended_at INTEGER);
CREATE INDEX turns_by_program ON turns (program_id, id);
CREATE INDEX tool_calls_by_name ON tool_calls (name, ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX programs_by_job ON programs (job_id, started_at) WHERE job_id IS NOT NULL;
INSERT INTO turns VALUES (7, 'prog_old', 'job_old', 0, 'grep', NULL, 130, 140);
)sql";

TEST(StoreSchema, VersionTwoDatabaseGainsPolicyState) {
  TempDir dir;
  raw_exec(dir.db(), std::string(kV1Schema) + kV1Rows + kV2Schema + "PRAGMA user_version = 2;");
  auto store = Store::open(dir.db());
  ASSERT_GE(latest_schema_version(), 3);
  EXPECT_EQ(store->schema_version(), latest_schema_version());
  // Version 2's rows are kept.
  ASSERT_EQ(store->program_turns("prog_old").size(), 1u);
  EXPECT_EQ(store->program_turns("prog_old")[0].this_func_call, "grep");
  // Version 3: one document per policy, replaced whole.
  EXPECT_FALSE(store->get_policy_state("ttl"));
  store->put_policy_state("ttl", {{"tools", {{"grep", {0.5, 1.5}}}}}, 200);
  store->put_policy_state("ttl", {{"tools", {{"grep", {0.5, 1.5, 2.5}}}}}, 300);
  auto got = store->get_policy_state("ttl");
  ASSERT_TRUE(got);
  EXPECT_EQ((*got)["tools"]["grep"].size(), 3u);
  EXPECT_EQ(raw_count(dir.db(), "SELECT updated_at FROM policy_state WHERE name = 'ttl'"), 300);
  EXPECT_THROW(store->put_policy_state("", {{"x", 1}}, 1), InvalidRecord);
  // ... and survives a reopen.
  store.reset();
  EXPECT_EQ(Store::open(dir.db())->get_policy_state("ttl")->at("tools").at("grep").size(), 3u);
}

TEST(StoreSchema, NewerDatabaseIsRefusedUntouched) {
  TempDir dir;
  const int newer = latest_schema_version() + 1;
  raw_exec(dir.db(), "CREATE TABLE future (x); PRAGMA user_version = " + std::to_string(newer) + ";");
  try {
    Store s(dir.db());
    FAIL() << "opened a database from a newer version";
  } catch (const SchemaTooNew& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("schema version " + std::to_string(newer)), std::string::npos) << msg;
    EXPECT_NE(msg.find("up to version " + std::to_string(latest_schema_version())), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir.db().string()), std::string::npos) << msg;
  }
  EXPECT_EQ(raw_user_version(dir.db()), newer);
}

TEST(StoreSchema, FailedStepRollsBackToThePreviousVersion) {
  TempDir dir;
  // A stray index named like step 2's last one makes that step fail after
  // its first statements ran; none of them may survive, and the file stays
  // at version 1 with its rows.
  raw_exec(dir.db(), std::string(kV1Schema) + kV1Rows +
                         "CREATE INDEX programs_by_job ON programs (id); PRAGMA user_version = 1;");
  EXPECT_THROW(Store s(dir.db()), StoreError);
  EXPECT_EQ(raw_user_version(dir.db()), 1);
  EXPECT_EQ(raw_count(dir.db(), "SELECT count(*) FROM sqlite_master WHERE name = 'turns'"), 0);
  raw_exec(dir.db(), "DROP INDEX programs_by_job;");
  auto store = Store::open(dir.db());
  EXPECT_EQ(store->schema_version(), latest_schema_version());
  EXPECT_EQ(store->message_count("sess_old"), 2);
}

}  // namespace
}  // namespace mnemo::daemon::store
