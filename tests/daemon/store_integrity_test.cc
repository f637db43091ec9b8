// Store: a damaged file is refused at open (quick_check), and repair()
// copies every readable row into a fresh file, keeping the damaged one.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <set>

#include "daemon/store/connection.h"
#include "daemon/store/integrity.h"
#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

namespace fs = std::filesystem;
using testing::make_message;
using testing::make_session;
using testing::TempDir;

constexpr int kSessions = 40;
constexpr int kMessages = 30;

std::string session_id(int s) { return "sess_" + std::to_string(1000 + s); }
std::string content(int s, int m) { return "session " + std::to_string(s) + " message " + std::to_string(m) + " " + std::string(200, 'x'); }

void populate(const fs::path& db) {
  Store store(db, StoreOptions{.durability = Durability::Process});
  for (int s = 0; s < kSessions; ++s) {
    store.create_session(make_session(session_id(s), 1 + s));
    for (int m = 0; m < kMessages; ++m) store.append_message(session_id(s), make_message(Role::User, content(s, m), 100 + m));
  }
  ProgramRecord p;
  p.id = "prog_1";
  p.session_id = session_id(0);
  p.started_at = 5;
  store.begin_program(p);
}  // closing the last connection checkpoints the WAL into the file

struct Page {
  int64_t pageno;
  int64_t cells;
};

// Leaf pages of `table` (from the dbstat virtual table), in b-tree order.
std::vector<Page> leaves(const fs::path& db, const std::string& table) {
  Connection c(db);
  std::vector<Page> out;
  auto q = c.query("SELECT pageno, ncell FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path");
  q.bind_text(1, table);
  while (q.next()) out.push_back({q.get_int(0), q.get_int(1)});
  return out;
}

// Overwrites the b-tree header and cell pointers of a page with garbage.
void damage(const fs::path& db, int64_t pageno) {
  constexpr int64_t kPageSize = 4096;  // SQLite's default, which the store keeps
  std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f);
  f.seekp((pageno - 1) * kPageSize);
  const std::string junk(64, '\xA5');
  f.write(junk.data(), std::streamsize(junk.size()));
  ASSERT_TRUE(f);
}

TEST(StoreIntegrity, QuickCheckPassesASoundFile) {
  TempDir dir;
  populate(dir.db());
  Connection c(dir.db());
  EXPECT_TRUE(quick_check(c).empty());
}

TEST(StoreIntegrity, DamagedFileIsRefusedAtOpenNamingTheFile) {
  TempDir dir;
  populate(dir.db());
  const auto pages = leaves(dir.db(), "messages");
  ASSERT_GT(pages.size(), 10u);
  damage(dir.db(), pages[pages.size() / 2].pageno);
  {
    Connection c(dir.db());
    EXPECT_FALSE(quick_check(c).empty());
  }
  const auto size_before = fs::file_size(dir.db());
  try {
    Store store(dir.db());
    FAIL() << "a damaged file was opened";
  } catch (const DamagedDatabase& e) {
    EXPECT_NE(std::string(e.what()).find(dir.db().string()), std::string::npos) << e.what();
    EXPECT_FALSE(e.problems().empty());
  }
  EXPECT_EQ(fs::file_size(dir.db()), size_before);
  EXPECT_FALSE(fs::exists(dir.db().string() + "-wal") && fs::file_size(dir.db().string() + "-wal") > 0);
}

TEST(StoreIntegrity, RepairRecoversEveryIntactRowAndKeepsTheDamagedFile) {
  TempDir dir;
  populate(dir.db());
  const auto pages = leaves(dir.db(), "messages");
  ASSERT_GT(pages.size(), 10u);
  // Two separate damaged leaves: the copy must get past both.
  const Page a = pages[pages.size() / 3], b = pages[2 * pages.size() / 3];
  damage(dir.db(), a.pageno);
  damage(dir.db(), b.pageno);

  const RepairReport r = repair(dir.db());
  ASSERT_TRUE(r.needed);
  EXPECT_FALSE(r.problems.empty());
  ASSERT_TRUE(fs::exists(r.damaged_copy)) << r.damaged_copy;
  EXPECT_NE(r.damaged_copy.filename().string().find("mnemo.db.damaged-"), std::string::npos);
  ASSERT_EQ(r.tables.size(), 5u);
  EXPECT_EQ(r.tables[0].table, "sessions");
  EXPECT_EQ(r.tables[0].copied, kSessions);
  EXPECT_EQ(r.tables[1].table, "messages");
  EXPECT_EQ(r.tables[1].copied, kSessions * kMessages - a.cells - b.cells);
  EXPECT_GE(r.tables[1].unreadable, 2);
  EXPECT_EQ(r.tables[2].copied, 1);  // the program

  // The repaired file opens (it passes the check) and holds exactly the
  // rows that were readable, unchanged.
  Store store(dir.db());
  EXPECT_EQ(store.count_sessions(), kSessions);
  int64_t found = 0;
  for (int s = 0; s < kSessions; ++s) {
    for (const auto& m : store.history(session_id(s))) {
      ++found;
      EXPECT_EQ(m.content, content(s, int(m.seq - 1))) << session_id(s) << " seq " << m.seq;
    }
  }
  EXPECT_EQ(found, r.tables[1].copied);
  EXPECT_TRUE(store.get_program("prog_1"));
  // Appends continue after the highest surviving seq of a session.
  const int64_t next = store.append_message(session_id(0), make_message(Role::User, "after repair", 1));
  EXPECT_EQ(next, store.history(session_id(0)).back().seq);
}

TEST(StoreIntegrity, CorruptionFoundWhileServingStopsWritesNotReads) {
  TempDir dir;
  populate(dir.db());
  const auto pages = leaves(dir.db(), "messages");
  damage(dir.db(), pages[pages.size() / 2].pageno);
  Connection c(dir.db());  // no quick_check here: as if the damage came later
  EXPECT_FALSE(c.damaged());
  try {
    c.column("SELECT count(*) FROM messages", 1);
    FAIL() << "the damaged page was read";
  } catch (const StorageFailure& e) {
    EXPECT_EQ(e.fault(), StorageFault::Corrupt) << e.what();
  }
  EXPECT_TRUE(c.damaged());
  try {
    Transaction tx(c);
    FAIL() << "a write transaction began on a damaged file";
  } catch (const StorageFailure& e) {
    EXPECT_EQ(e.fault(), StorageFault::Corrupt);
    EXPECT_NE(std::string(e.what()).find("--repair"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(c.in_transaction());
  Transaction read(c, Transaction::Kind::Read);
  EXPECT_EQ(c.scalar("SELECT count(*) FROM sessions"), std::to_string(kSessions));
}

TEST(StoreIntegrity, RepairLeavesASoundFileAlone) {
  TempDir dir;
  populate(dir.db());
  const RepairReport r = repair(dir.db());
  EXPECT_FALSE(r.needed);
  EXPECT_TRUE(r.damaged_copy.empty());
  for (const auto& e : fs::directory_iterator(dir.db().parent_path()))
    EXPECT_EQ(e.path().filename().string().find("damaged"), std::string::npos) << e.path();
  EXPECT_EQ(Store(dir.db()).count_sessions(), kSessions);
}

TEST(StoreIntegrity, RepairOfAMissingFileIsANoOp) {
  TempDir dir;
  EXPECT_FALSE(repair(dir.db()).needed);
  EXPECT_FALSE(fs::exists(dir.db()));
}

}  // namespace
}  // namespace mnemo::daemon::store
