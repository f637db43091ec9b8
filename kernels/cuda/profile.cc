#include "kernels/cuda/profile.h"

#include <algorithm>

#include "kernels/cuda/check.h"

namespace mnemo::kernels::cuda {
namespace {

struct Token {
  const char* kernel;
  int64_t bytes;
  cudaEvent_t start;
};

bool g_on = false;
cudaStream_t g_stream = nullptr;
std::vector<Token> g_tokens;

}  // namespace

void profile_start() {
  g_tokens.clear();
  g_on = true;
}

void profile_token(const char* kernel, int64_t bytes, cudaStream_t stream) {
  if (!g_on) return;
  g_stream = stream;
  cudaEvent_t e;
  cuda_check(cudaEventCreate(&e), "cudaEventCreate");
  cuda_check(cudaEventRecord(e, stream), "cudaEventRecord");
  g_tokens.push_back({kernel, bytes, e});
}

std::vector<KernelStat> profile_stop() {
  g_on = false;
  std::vector<KernelStat> stats;
  if (g_tokens.empty()) return stats;
  // The last kernel ends where this closing event is recorded.
  cudaEvent_t end;
  cuda_check(cudaEventCreate(&end), "cudaEventCreate");
  cuda_check(cudaEventRecord(end, g_stream), "cudaEventRecord");
  cuda_check(cudaEventSynchronize(end), "cudaEventSynchronize");
  for (size_t i = 0; i < g_tokens.size(); ++i) {
    const Token& t = g_tokens[i];
    float ms = 0;
    cudaEvent_t next = i + 1 < g_tokens.size() ? g_tokens[i + 1].start : end;
    cuda_check(cudaEventElapsedTime(&ms, t.start, next), "cudaEventElapsedTime");
    auto it = std::find_if(stats.begin(), stats.end(), [&](const KernelStat& s) { return s.kernel == t.kernel; });
    if (it == stats.end()) it = stats.insert(stats.end(), KernelStat{t.kernel});
    it->launches += 1;
    it->bytes += t.bytes;
    it->ms += ms;
  }
  for (Token& t : g_tokens) cudaEventDestroy(t.start);
  cudaEventDestroy(end);
  g_tokens.clear();
  return stats;
}

}  // namespace mnemo::kernels::cuda
