// RMSNorm: one block per row, warp-shuffle reduction of the sum of squares.
#include <climits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/profile.h"

namespace mnemo::kernels::cuda {
namespace {

// Enough threads to keep a row's loads in flight; more only lengthens the
// cross-warp reduction for rows that are a few thousand wide.
constexpr int kMaxThreads = 512;

__device__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// blockDim.x is a multiple of 32, at most 1024, so 32 partial sums suffice.
__global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ w, float eps, int dim,
                               float* __restrict__ out) {
  const float* xr = x + int64_t(blockIdx.x) * dim;
  float* o = out + int64_t(blockIdx.x) * dim;

  float ss = 0.0f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  ss = warp_sum(ss);

  __shared__ float partial[32];
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = ss;
  __syncthreads();
  if (warp == 0) {
    ss = warp_sum(lane < int(blockDim.x / 32) ? partial[lane] : 0.0f);
    if (lane == 0) partial[0] = ss;
  }
  __syncthreads();

  // The second pass over xr hits L1/L2: a row is at most a few tens of KB.
  const float inv = rsqrtf(partial[0] / float(dim) + eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = w[i] * (xr[i] * inv);
}

}  // namespace

void rmsnorm(const float* x, const float* w, float eps, int64_t n, int64_t dim, float* out,
             cudaStream_t stream) {
  if (n <= 0 || dim <= 0) return;
  if (dim > INT_MAX || n > INT_MAX) throw CudaError("rmsnorm: shape too large for one launch");
  const int threads = int(dim >= kMaxThreads ? kMaxThreads : (dim + 31) / 32 * 32);
  // Compulsory traffic: x read and out written once, w read once (L2-resident across rows).
  profile_token("rmsnorm", (2 * n * dim + dim) * int64_t(sizeof(float)), stream);
  rmsnorm_kernel<<<unsigned(n), threads, 0, stream>>>(x, w, eps, int(dim), out);
  cuda_check(cudaGetLastError(), "rmsnorm launch");
}

bool cuda_device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

}  // namespace mnemo::kernels::cuda
