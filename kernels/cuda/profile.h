#pragma once
// Bytes-moved accounting, after calm: every launcher calls profile_token with
// the bytes its kernel must read and write at minimum, just before the launch.
// While profiling is on, each token records an event, so the time between
// consecutive tokens is one kernel's time and a report prints GB/s per kernel
// against the HBM roofline. Off (the default) it costs one branch.
// Meant for one host thread driving one stream, as in a benchmark.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mnemo::kernels::cuda {

struct KernelStat {
  std::string kernel;
  int64_t launches = 0;
  int64_t bytes = 0;  // summed over launches
  double ms = 0;      // summed over launches
};

void profile_start();
// Ends profiling: synchronizes, returns one row per kernel name in first-launch order.
std::vector<KernelStat> profile_stop();
void profile_token(const char* kernel, int64_t bytes, cudaStream_t stream);

}  // namespace mnemo::kernels::cuda
