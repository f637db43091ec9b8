// Store: a full disk, a read-only file and other storage faults become
// StorageFailure with the right fault, leave no transaction open, and
// writes resume once the cause is gone. PRAGMA max_page_count stands in for
// a full disk.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <map>
#include <mutex>
#include <thread>

#include "daemon/store/connection.h"
#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

using testing::make_message;
using testing::make_session;
using testing::TempDir;

TEST(StoreFailures, SqliteCodesAreClassified) {
  EXPECT_EQ(storage_fault_of(SQLITE_FULL), StorageFault::Full);
  EXPECT_EQ(storage_fault_of(SQLITE_IOERR), StorageFault::Io);
  EXPECT_EQ(storage_fault_of(SQLITE_IOERR_WRITE), StorageFault::Io);
  EXPECT_EQ(storage_fault_of(SQLITE_IOERR_FSYNC), StorageFault::Io);
  EXPECT_EQ(storage_fault_of(SQLITE_CANTOPEN), StorageFault::Io);
  EXPECT_EQ(storage_fault_of(SQLITE_CORRUPT), StorageFault::Corrupt);
  EXPECT_EQ(storage_fault_of(SQLITE_CORRUPT_INDEX), StorageFault::Corrupt);
  EXPECT_EQ(storage_fault_of(SQLITE_NOTADB), StorageFault::Corrupt);
  EXPECT_EQ(storage_fault_of(SQLITE_READONLY), StorageFault::ReadOnly);
  EXPECT_EQ(storage_fault_of(SQLITE_READONLY_DBMOVED), StorageFault::ReadOnly);
  EXPECT_EQ(storage_fault_of(SQLITE_BUSY), StorageFault::Locked);
  // The caller's mistakes are not storage faults.
  EXPECT_FALSE(storage_fault_of(SQLITE_CONSTRAINT_PRIMARYKEY));
  EXPECT_FALSE(storage_fault_of(SQLITE_ERROR));
  EXPECT_FALSE(storage_fault_of(SQLITE_MISUSE));
}

TEST(StoreFailures, QueryOnlyConnectionFailsAsReadOnly) {
  TempDir dir;
  Connection db(dir.path() / "plain.db");
  db.exec("CREATE TABLE t (x)");
  db.exec("PRAGMA query_only = 1");
  try {
    db.exec("INSERT INTO t VALUES (1)");
    FAIL() << "the write went through";
  } catch (const StorageFailure& e) {
    EXPECT_EQ(e.fault(), StorageFault::ReadOnly) << e.what();
    EXPECT_NE(std::string(e.what()).find("plain.db"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(db.in_transaction());
}

// Appends `content` until the store is full; returns the seqs acknowledged.
std::vector<int64_t> fill(Store& store, const std::string& session, const std::string& content,
                          StorageFailure* failure = nullptr) {
  std::vector<int64_t> acked;
  for (int i = 0; i < 10000; ++i) {
    try {
      acked.push_back(store.append_message(session, make_message(Role::User, content, 10 + i)));
    } catch (const StorageFailure& e) {
      if (failure) *failure = e;
      return acked;
    }
  }
  ADD_FAILURE() << "never filled up";
  return acked;
}

TEST(StoreFailures, FullStoreFailsWritesKeepsReadsAndResumesWhenSpaceReturns) {
  TempDir dir;
  Store store(dir.db(), StoreOptions{.durability = Durability::Process, .max_page_count = 64});
  store.create_session(make_session("sess_ballast", 1));
  store.create_session(make_session("sess_a", 2));
  const std::string big(3000, 'b');
  // Most of the space goes to a session that will be deleted to make room.
  fill(store, "sess_ballast", big);
  StorageFailure failure(StorageFault::Io, 0, "");
  const std::vector<int64_t> acked = fill(store, "sess_a", std::string(500, 'a'), &failure);
  EXPECT_EQ(failure.fault(), StorageFault::Full) << failure.what();
  EXPECT_EQ(failure.sqlite_code() & 0xff, SQLITE_FULL);

  // Reads keep working, and show exactly what was acknowledged.
  EXPECT_EQ(store.list_sessions(10).size(), 2u);
  const auto h = store.history("sess_a");
  ASSERT_EQ(h.size(), acked.size());
  for (size_t i = 0; i < h.size(); ++i) EXPECT_EQ(h[i].seq, acked[i]);

  // Still full, and failing again leaves nothing half-done.
  EXPECT_THROW(store.append_message("sess_a", make_message(Role::User, big, 99)), StorageFailure);
  EXPECT_EQ(store.message_count("sess_a"), int64_t(acked.size()));

  // Space returns: the same store takes writes again, with no hole in seq.
  store.delete_session("sess_ballast");
  const int64_t seq = store.append_message("sess_a", make_message(Role::User, big, 100));
  EXPECT_EQ(seq, int64_t(acked.size()) + 1);
  store.create_session(make_session("sess_new", 3));
  EXPECT_EQ(store.message_count("sess_a"), int64_t(acked.size()) + 1);
}

TEST(StoreFailures, GroupedAppendsThatHitAFullStoreRollBackTogether) {
  TempDir dir;
  Store store(dir.db(), StoreOptions{.durability = Durability::Process, .max_page_count = 80});
  store.create_session(make_session("sess_ballast", 1));
  constexpr int kThreads = 6;
  for (int t = 0; t < kThreads; ++t) store.create_session(make_session("sess_" + std::to_string(t), 2));
  fill(store, "sess_ballast", std::string(3000, 'b'));
  store.delete_session("sess_ballast");  // room for a few hundred KB, shared by racing writers

  // Writers race until every one of them has seen the store full; each
  // grouped batch that fails must leave none of its writes behind.
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> acked;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string id = "sess_" + std::to_string(t);
      for (int i = 0; i < 5000; ++i) {
        const std::string content = id + ":" + std::to_string(i) + ":" + std::string(700, 'x');
        try {
          store.append_message(id, make_message(Role::User, content, 10 + i));
        } catch (const StorageFailure& e) {
          EXPECT_EQ(e.fault(), StorageFault::Full) << e.what();
          return;
        }
        std::lock_guard lock(mu);
        acked[id].push_back(content);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    const std::string id = "sess_" + std::to_string(t);
    const auto h = store.history(id);
    ASSERT_EQ(h.size(), acked[id].size()) << id;
    for (size_t i = 0; i < h.size(); ++i) {
      EXPECT_EQ(h[i].seq, int64_t(i) + 1);
      EXPECT_EQ(h[i].content, acked[id][i]);
    }
  }
  // The connection has no transaction left open: a small write still fits
  // (the failed batches were rolled back, their pages free).
  EXPECT_NO_THROW(store.append_message("sess_0", make_message(Role::User, "small", 1)));
}

TEST(StoreFailures, FailureInsideABatchDoesNotStrandTheNextWrite) {
  TempDir dir;
  Store store(dir.db(), StoreOptions{.durability = Durability::Process, .max_page_count = 48});
  store.create_session(make_session("sess_a", 1));
  store.create_session(make_session("sess_b", 1));
  fill(store, "sess_a", std::string(2000, 'a'));
  // Repeated failures must not pile up open transactions or savepoints.
  for (int i = 0; i < 20; ++i)
    EXPECT_THROW(store.append_message("sess_b", make_message(Role::User, std::string(4000, 'b'), i)), StorageFailure);
  store.delete_session("sess_a");
  EXPECT_EQ(store.append_message("sess_b", make_message(Role::User, "after", 1)), 1);
  EXPECT_EQ(store.history("sess_b").at(0).content, "after");
}

}  // namespace
}  // namespace mnemo::daemon::store
