#pragma once
// CUDA twins of kernels/cpu/ops.h: same signatures over plain device
// pointers, plus a stream. Activations are row-major [tokens, features].
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mnemo::kernels::cuda {

// False on machines with no driver or no device, so tests can skip.
bool cuda_device_available();

// out[t] = x[t] / rms(x[t]) * w, rows of length dim. x, w, out on device.
void rmsnorm(const float* x, const float* w, float eps, int64_t n, int64_t dim, float* out,
             cudaStream_t stream = nullptr);

}  // namespace mnemo::kernels::cuda
