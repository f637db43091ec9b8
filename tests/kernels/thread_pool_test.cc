// The persistent team behind kernels/cpu/parallel.h: every thread index runs
// once per dispatch, dispatch after dispatch (spinning and after sleeping),
// nested steps run serially, the count is per calling thread, exceptions
// reach the caller, and kernels give the same bits whatever the team size.
#include "kernels/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/parallel.h"

namespace mnemo::kernels::cpu {
namespace {

// Restores the calling thread's count after a test changes it.
class ThreadCount {
 public:
  ThreadCount() : saved_(num_threads()) {}
  ~ThreadCount() { set_num_threads(saved_); }

 private:
  int saved_;
};

struct Counts {
  std::vector<std::atomic<int>> per_thread;
  std::atomic<int> wrong_size{0};
  explicit Counts(int n) : per_thread(size_t(n)) {}
};

TEST(ThreadPoolTest, EveryThreadRunsOncePerDispatch) {
  ThreadPool pool(4);
  ASSERT_EQ(pool.threads(), 4);
  Counts c(4);
  constexpr int kDispatches = 5000;
  for (int i = 0; i < kDispatches; ++i)
    pool.run(
        [](void* ctx, int t, int n) {
          auto& cc = *static_cast<Counts*>(ctx);
          if (n != 4) cc.wrong_size.fetch_add(1);
          cc.per_thread[size_t(t)].fetch_add(1);
        },
        &c);
  EXPECT_EQ(c.wrong_size.load(), 0);
  for (int t = 0; t < 4; ++t) EXPECT_EQ(c.per_thread[size_t(t)].load(), kDispatches) << "thread " << t;
}

// Each step sees the writes of the one before it (the join orders them).
TEST(ThreadPoolTest, StepsSeeThePreviousStepsWrites) {
  ThreadPool pool(3);
  std::vector<int64_t> v(3000, 0);
  struct Ctx {
    std::vector<int64_t>* v;
    int step;
  } ctx{&v, 0};
  for (ctx.step = 0; ctx.step < 500; ++ctx.step)
    pool.run(
        [](void* p, int t, int n) {
          auto& c = *static_cast<Ctx*>(p);
          // Each thread takes a different slice every step, so stale reads would show.
          const int64_t size = int64_t(c.v->size());
          const int s = (t + c.step) % n;
          for (int64_t i = size * s / n; i < size * (s + 1) / n; ++i) (*c.v)[size_t(i)] += 1;
        },
        &ctx);
  for (int64_t x : v) ASSERT_EQ(x, 500);
}

// Workers that went to sleep (a pause longer than the spin) wake for the next step.
TEST(ThreadPoolTest, WakesSleepingWorkers) {
  ThreadPool pool(3);
  std::atomic<int> calls{0};
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(ThreadPool::spin_ns()) + std::chrono::milliseconds(3));
    pool.run([](void* p, int, int) { static_cast<std::atomic<int>*>(p)->fetch_add(1); }, &calls);
    EXPECT_EQ(calls.load(), 3 * (i + 1));
  }
}

TEST(ThreadPoolTest, NestedCallRunsSerially) {
  ThreadCount keep;
  set_num_threads(3);
  std::atomic<int> outer{0}, inner{0}, inner_not_serial{0};
  run_on_team([&](int, int) {
    outer.fetch_add(1);
    EXPECT_TRUE(ThreadPool::in_team());
    run_on_team([&](int t, int n) {
      inner.fetch_add(1);
      if (t != 0 || n != 1) inner_not_serial.fetch_add(1);
    });
  });
  EXPECT_EQ(outer.load(), 3);
  EXPECT_EQ(inner.load(), 3);
  EXPECT_EQ(inner_not_serial.load(), 0);
  EXPECT_FALSE(ThreadPool::in_team());
}

TEST(ThreadPoolTest, SetNumThreadsChangesTeamSize) {
  ThreadCount keep;
  for (int n : {1, 3, 2, 4, 1, 2}) {
    set_num_threads(n);
    EXPECT_EQ(num_threads(), n);
    std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
    std::atomic<int> wrong{0};
    run_on_team([&](int t, int team) {
      if (team != n) wrong.fetch_add(1);
      else seen[size_t(t)].fetch_add(1);
    });
    EXPECT_EQ(wrong.load(), 0) << n;
    for (int t = 0; t < n; ++t) EXPECT_EQ(seen[size_t(t)].load(), 1) << "n " << n << " thread " << t;
  }
  set_num_threads(0);
  EXPECT_EQ(num_threads(), 1);
}

TEST(ThreadPoolTest, SmallWorkSkipsTheTeam) {
  ThreadCount keep;
  set_num_threads(4);
  int calls = 0;  // not atomic: only the caller may run it
  run_on_team([&](int t, int n) { calls += (t == 0 && n == 1); }, false);
  EXPECT_EQ(calls, 1);
}

// The count belongs to the thread that set it, as OpenMP's did: the engine
// loop and an embeddings worker each keep their own.
TEST(ThreadPoolTest, CountIsPerCallingThread) {
  ThreadCount keep;
  set_num_threads(3);
  int other_default = 0, other_team = 0;
  std::thread([&] {
    other_default = num_threads();
    set_num_threads(2);
    std::atomic<int> calls{0};
    run_on_team([&](int, int) { calls.fetch_add(1); });
    other_team = calls.load();
  }).join();
  EXPECT_EQ(num_threads(), 3);
  EXPECT_GE(other_default, 1);
  EXPECT_EQ(other_team, 2);
}

TEST(ThreadPoolTest, ParallelForCoversEachIndexOnce) {
  ThreadCount keep;
  for (int threads : {1, 2, 3})
    for (int64_t count : {1, 7, 64, 1001})
      for (int64_t align : {1, 4, 16}) {
        set_num_threads(threads);
        std::vector<std::atomic<int>> hit(static_cast<size_t>(count));
        std::atomic<int> misaligned{0};
        parallel_for(
            count,
            [&](int64_t b, int64_t e) {
              if (b % align != 0) misaligned.fetch_add(1);
              for (int64_t i = b; i < e; ++i) hit[size_t(i)].fetch_add(1);
            },
            true, align);
        EXPECT_EQ(misaligned.load(), 0);
        for (int64_t i = 0; i < count; ++i) ASSERT_EQ(hit[size_t(i)].load(), 1) << threads << " " << count << " " << i;
      }
}

TEST(ThreadPoolTest, ParallelUnitsCoversEachUnitOnce) {
  ThreadCount keep;
  for (int threads : {1, 2, 3, 5})
    for (int64_t count : {1, 2, 7, 64, 1001}) {
      set_num_threads(threads);
      std::vector<std::atomic<int>> hit(static_cast<size_t>(count));
      parallel_units(count, [&](int64_t u) {
        if (u % 13 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));  // uneven: others steal
        hit[size_t(u)].fetch_add(1);
      });
      for (int64_t i = 0; i < count; ++i) ASSERT_EQ(hit[size_t(i)].load(), 1) << threads << " " << count << " " << i;
    }
}

// Dynamic steps may end without a worker that came late; the plain steps
// after them must still run on every thread exactly once, and no step twice.
TEST(ThreadPoolTest, DynamicAndPlainStepsInterleave) {
  ThreadCount keep;
  set_num_threads(3);
  std::atomic<int64_t> plain{0}, units{0};
  for (int i = 0; i < 20000; ++i) {
    run_on_team([&](int, int n) {
      EXPECT_EQ(n, 3);
      plain.fetch_add(1);
    });
    std::atomic<int> next{0};
    run_on_team_dynamic([&](int, int) {
      while (next.fetch_add(1) < 4) units.fetch_add(1);
    });
  }
  EXPECT_EQ(plain.load(), 3 * 20000);
  EXPECT_EQ(units.load(), 4 * 20000);
}

TEST(ThreadPoolTest, HeldTeamRunsStepsAndLetsGo) {
  ThreadCount keep;
  set_num_threads(2);
  ThreadPool::allow_hold(true);
  std::atomic<int> ran{0};
  {
    TeamBurst burst;
    for (int i = 0; i < 1000; ++i) {
      run_on_team([&](int, int) { ran.fetch_add(1); });
      if (i % 100 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // serial work between steps
    }
  }
  EXPECT_EQ(ran.load(), 2000);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers back asleep
  run_on_team([&](int, int) { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 2002);
  ThreadPool::allow_hold(false);
}

TEST(ThreadPoolTest, ExceptionInADynamicStepReachesTheCaller) {
  ThreadCount keep;
  set_num_threads(2);
  std::atomic<int> next{0};
  EXPECT_THROW(run_on_team_dynamic([&](int, int) {
                 if (next.fetch_add(1) == 0) throw std::runtime_error("first unit");
               }),
               std::runtime_error);
  std::atomic<int> ran{0};
  run_on_team([&](int, int) { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 2);
}

TEST(ThreadPoolTest, ExceptionOnAWorkerReachesTheCaller) {
  ThreadCount keep;
  set_num_threads(3);
  EXPECT_THROW(run_on_team([](int t, int) {
                 if (t == 2) throw std::runtime_error("worker");
               }),
               std::runtime_error);
  EXPECT_THROW(run_on_team([](int t, int) {
                 if (t == 0) throw std::runtime_error("caller");
               }),
               std::runtime_error);
  std::atomic<int> calls{0};  // the team is still whole
  run_on_team([&](int, int) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 3);
}

struct Weights {
  std::vector<uint16_t> bits;
  MatrixView view;
};

Weights random_bf16(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Weights w;
  w.bits.resize(size_t(rows * cols));
  for (auto& b : w.bits) b = f32_to_bf16(nd(rng));
  w.view = MatrixView{w.bits.data(), DType::BF16, rows, cols};
  return w;
}

// The rows of a GEMV split across threads, each row's sum computed by one
// thread in one order: the team size cannot change a bit.
TEST(ThreadPoolTest, GemvBitIdenticalAcrossTeamSizes) {
  ThreadCount keep;
  std::mt19937 rng(7);
  for (int64_t n : {1, 3, 40}) {
    Weights w = random_bf16(515, 300, rng);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(size_t(n * 300));
    for (auto& e : x) e = nd(rng);
    std::vector<float> ref(size_t(n * 515));
    matmul_reference(x.data(), n, w.view, ref.data());
    std::vector<std::vector<float>> ys;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      ys.emplace_back(size_t(n * 515), NAN);
      matmul(x.data(), n, w.view, ys.back().data());
    }
    const double tol = matmul_rounds_x_to_bf16(w.view, n) ? 0.2 : 1e-3;
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_NEAR(ys[0][i], ref[i], tol) << "n " << n << " i " << i;
      ASSERT_EQ(std::memcmp(&ys[0][i], &ys[1][i], 4), 0) << "2 threads, n " << n << " i " << i;
      ASSERT_EQ(std::memcmp(&ys[0][i], &ys[2][i], 4), 0) << "3 threads, n " << n << " i " << i;
    }
  }
}

}  // namespace
}  // namespace mnemo::kernels::cpu
