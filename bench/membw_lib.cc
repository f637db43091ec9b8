#include "bench/membw.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

namespace mnemo::bench {
namespace {

struct Free {
  void operator()(float* p) const { std::free(p); }
};
using Array = std::unique_ptr<float[], Free>;

Array make_array(int64_t count) {
  const size_t bytes = (size_t(count) * sizeof(float) + 4095) & ~size_t(4095);
  Array a(static_cast<float*>(std::aligned_alloc(4096, bytes)));
  // First touch with the same static split as the kernels, so pages sit
  // where the threads that stream them run.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) a[i] = 1.0f + float(i & 7);
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Bandwidth measure_bandwidth(BandwidthKernel kernel, int threads, int64_t bytes_per_array, int reps) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  const int64_t count = bytes_per_array / int64_t(sizeof(float));
  Array a = make_array(count), b = make_array(count), c = make_array(count);
  float *pa = a.get(), *pb = b.get(), *pc = c.get();
  std::vector<double> gbps;
  volatile float sink = 0;
  for (int rep = 0; rep < reps + 1; ++rep) {  // the first pass warms up
    const auto t0 = std::chrono::steady_clock::now();
    double bytes = 0;
    if (kernel == BandwidthKernel::Triad) {
      const float s = 3.0f;
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < count; ++i) pa[i] = pb[i] + s * pc[i];
      bytes = 3.0 * double(count) * sizeof(float);
    } else {
      float sum = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : sum)
      for (int64_t i = 0; i < count; ++i) sum += pb[i];
      sink = sink + sum;
      bytes = double(count) * sizeof(float);
    }
    const double s = seconds_since(t0);
    if (rep > 0) gbps.push_back(bytes / s / 1e9);
  }
  omp_set_num_threads(saved);
  std::sort(gbps.begin(), gbps.end());
  return Bandwidth{gbps.back(), gbps[gbps.size() / 2]};
}

double measure_triad_gbps(int threads) { return measure_bandwidth(BandwidthKernel::Triad, threads).median_gbps; }

}  // namespace mnemo::bench
