#pragma once
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace mnemo::kernels::cuda {

// A failed CUDA call leaves the device context in an unknown state for this
// request only; an exception lets the caller drop the request and go on.
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw CudaError(std::string(what) + ": " + cudaGetErrorString(err));
}

}  // namespace mnemo::kernels::cuda
