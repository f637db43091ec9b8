#pragma once
// Memory bandwidth on this machine, the denominator of every roofline we
// report: STREAM triad (a = b + s*c, counted as 3 arrays moved, the STREAM
// convention) and a read-only sum (what a GEMV does to its weights).
#include <cstdint>

namespace mnemo::bench {

struct Bandwidth {
  double best_gbps = 0;
  double median_gbps = 0;
};

enum class BandwidthKernel { Triad, Read };

// Runs the kernel reps times on arrays of bytes_per_array each (far above any
// L3 by default) with the given OpenMP thread count, restored afterwards.
Bandwidth measure_bandwidth(BandwidthKernel kernel, int threads, int64_t bytes_per_array = int64_t(256) << 20,
                            int reps = 9);

// Median triad GB/s: the roofline bandwidth of DESIGN.md's targets.
double measure_triad_gbps(int threads);

}  // namespace mnemo::bench
