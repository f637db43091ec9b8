// What one parallel step costs in synchronisation: an empty dispatch + join
// of the kernels' persistent pool (kernels/cpu/thread_pool.h) against an
// OpenMP parallel region, at 1 and 2 threads, then a 2048x2048 BF16 decode
// GEMV (weights streamed from DRAM, as in decode) run by each team on the
// same kernel. A decode step runs ~5 such steps per layer (q/k/v, attention, o, gate/up, down),
// so the barrier is a visible share of a token at 123M.
//
// Samples of the two teams alternate, with a pause between them so each
// team's threads have gone back to sleep and do not steal the other's cores.
//
// Usage: mnemo_barrier_bench [--json PATH] [--threads 1,2] [--samples 41] [--batch 2000]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/report.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/thread_pool.h"

namespace mnemo::bench {
namespace {

namespace cpu = kernels::cpu;
using Clock = std::chrono::steady_clock;

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoi(item));
  return out;
}

// The OpenMP team on the same seam: what the kernels ran on before the pool.
void openmp_runner(cpu::detail::TeamFn fn, void* ctx, int threads) {
#pragma omp parallel num_threads(threads)
  fn(ctx, omp_get_thread_num(), omp_get_num_threads());
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Stats {
  double median = 0, p10 = 0, p90 = 0;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[size_t(q * double(v.size() - 1) + 0.5)]; };
  return {at(0.5), at(0.1), at(0.9)};
}

// Lets both teams' spinning threads go back to sleep before the next sample.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

int run(int argc, char** argv) {
  const std::string path = flag(argc, argv, "--json", std::string(MNEMO_BENCH_DIR) + "/barrier_bench.json");
  const std::vector<int> threads_list = parse_list(flag(argc, argv, "--threads", "1,2"));
  const int samples = std::stoi(flag(argc, argv, "--samples", "41"));
  const int batch = std::stoi(flag(argc, argv, "--batch", "2000"));
  const std::string load_before = loadavg();

  Table table({"step", "threads", "pool", "openmp", "openmp / pool", "pool p10..p90", "openmp p10..p90", "target"});
  auto range = [](const Stats& s, double scale) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f..%.0f", s.p10 * scale, s.p90 * scale);
    return std::string(buf);
  };

  // Empty dispatch + join, ns per step (a batch of steps per sample).
  for (int t : threads_list) {
    cpu::set_num_threads(t);
    omp_set_num_threads(t);
    volatile int sink = 0;
    auto empty_step = [&](int thread, int) {
      if (thread < 0) sink = thread;  // never: keeps the step from being optimised out
    };
    std::vector<double> pool_ns, omp_ns;
    for (int s = 0; s < samples; ++s)
      for (int which = 0; which < 2; ++which) {
        // OpenMP: a bare region, as a kernel's `#pragma omp parallel` was
        // (forked even at one thread).
        auto step = [&] {
          if (which == 0) {
            cpu::run_on_team(empty_step);
          } else {
#pragma omp parallel num_threads(t)
            empty_step(omp_get_thread_num(), omp_get_num_threads());
          }
        };
        step();  // wake the team
        const auto t0 = Clock::now();
        for (int i = 0; i < batch; ++i) step();
        (which ? omp_ns : pool_ns).push_back(seconds_since(t0) * 1e9 / batch);
        settle();
      }
    const Stats p = stats(pool_ns), o = stats(omp_ns);
    table.add({"empty dispatch + join (ns)", t, p.median, o.median, o.median / p.median, range(p, 1), range(o, 1),
               t == 1 ? "pool ~0 (runs inline)" : "pool < openmp"});
  }

  // 2048x2048 BF16 GEMV, n = 1: weights cycle through copies filling 256 MiB
  // so every call streams from DRAM.
  constexpr int64_t kRows = 2048, kCols = 2048;
  const size_t matrix_bytes = size_t(kRows * kCols) * 2;
  const size_t copies = (size_t(256) << 20) / matrix_bytes;
  std::vector<uint16_t> weights(copies * size_t(kRows * kCols));
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = uint16_t(0x3c00 | ((i * 37) & 0xff));
  std::vector<float> x(static_cast<size_t>(kCols)), y(static_cast<size_t>(kRows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 13) - 6) * 0.1f;
  const int calls = std::max<int>(1, int(copies) * 4);
  for (int t : threads_list) {
    cpu::set_num_threads(t);
    omp_set_num_threads(t);
    std::vector<double> pool_us, omp_us;
    std::vector<float> y_pool, y_omp;
    for (int s = 0; s < samples; ++s)
      for (int which = 0; which < 2; ++which) {
        cpu::detail::set_team_runner(which ? openmp_runner : nullptr);
        const auto t0 = Clock::now();
        for (int i = 0; i < calls; ++i) {
          const kernels::MatrixView w{weights.data() + size_t(i % int(copies)) * size_t(kRows * kCols),
                                      kernels::DType::BF16, kRows, kCols};
          cpu::matmul(x.data(), 1, w, y.data());
        }
        (which ? omp_us : pool_us).push_back(seconds_since(t0) * 1e6 / calls);
        (which ? y_omp : y_pool) = y;
        settle();
      }
    cpu::detail::set_team_runner(nullptr);
    if (std::memcmp(y_pool.data(), y_omp.data(), y.size() * sizeof(float)) != 0)
      std::fprintf(stderr, "warning: the pool's and OpenMP's GEMV results differ\n");
    const Stats p = stats(pool_us), o = stats(omp_us);
    table.add({"2048x2048 bf16 gemv n=1 (us)", t, p.median, o.median, o.median / p.median, range(p, 1), range(o, 1),
               "pool >= openmp speed"});
    std::printf("gemv at %d threads: pool %.1f GB/s, openmp %.1f GB/s\n", t, double(matrix_bytes) / p.median / 1e3,
                double(matrix_bytes) / o.median / 1e3);
  }

  const std::string load_after = loadavg();
  std::printf("\nmedians of %d samples (%d empty steps or %d GEMVs each), teams alternating; pool spin %lld us\n"
              "load average before %s, after %s\n\n",
              samples, batch, calls, static_cast<long long>(cpu::ThreadPool::spin_ns() / 1000), load_before.c_str(),
              load_after.c_str());
  table.print();
  write_json(path, {{"rows", table.to_json()},
                    {"samples", samples},
                    {"batch", batch},
                    {"pool_spin_us", cpu::ThreadPool::spin_ns() / 1000},
                    {"load_before", load_before},
                    {"load_after", load_after}});
  return 0;
}

}  // namespace
}  // namespace mnemo::bench

int main(int argc, char** argv) { return mnemo::bench::run(argc, argv); }
