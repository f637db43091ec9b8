// Store: one Store shared by several threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

using testing::make_message;
using testing::make_session;
using testing::TempDir;

TEST(StoreConcurrency, AppendsFromManyThreadsGetDistinctSequenceNumbers) {
  TempDir dir;
  // Ordering, not fsync, is under test here; Process keeps the test quick.
  auto store = Store::open(dir.db(), StoreOptions{.durability = Durability::Process});
  store->create_session(make_session("sess_shared", 1));
  constexpr int kThreads = 8;
  constexpr int kEach = 25;
  std::vector<std::vector<int64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread also works on a session of its own meanwhile.
      std::string own = "sess_t" + std::to_string(t);
      store->create_session(make_session(own, 2));
      for (int i = 0; i < kEach; ++i) {
        std::string content = std::to_string(t) + ":" + std::to_string(i);
        seqs[t].push_back(store->append_message("sess_shared", make_message(Role::User, content, 10 + i)));
        store->append_message(own, make_message(Role::User, content, 10 + i));
      }
    });
  }
  for (auto& th : threads) th.join();

  std::set<int64_t> all;
  for (auto& v : seqs) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));  // a thread's appends keep its order
    all.insert(v.begin(), v.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kEach);

  auto h = store->history("sess_shared");
  ASSERT_EQ(h.size(), static_cast<size_t>(kThreads * kEach));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) {
      const MessageRecord& m = h[static_cast<size_t>(seqs[t][i] - 1)];
      EXPECT_EQ(m.content, std::to_string(t) + ":" + std::to_string(i));
    }
    EXPECT_EQ(store->message_count("sess_t" + std::to_string(t)), kEach);
  }
  EXPECT_EQ(store->count_sessions(), kThreads + 1);
}

TEST(StoreConcurrency, GroupedAppendsFailOneByOne) {
  // Appends that share a commit (group commit) succeed or fail each on its
  // own: a thread appending to a missing session gets NotFound while the
  // others' messages, committed in the same transactions, all land.
  TempDir dir;
  auto store = Store::open(dir.db());  // Full: slow commits make batches
  store->create_session(make_session("sess_ok", 1));
  constexpr int kThreads = 6, kEach = 10;
  std::atomic<int> not_found{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (t == 0) {
          try {
            store->append_message("sess_missing", make_message(Role::User, "x", 5));
          } catch (const NotFound&) {
            ++not_found;
          }
        } else {
          store->append_message("sess_ok", make_message(Role::User, std::to_string(t), 5));
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(not_found.load(), kEach);
  EXPECT_EQ(store->message_count("sess_ok"), (kThreads - 1) * kEach);
}

}  // namespace
}  // namespace mnemo::daemon::store
