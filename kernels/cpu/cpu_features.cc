// Runtime CPU check for the AVX-512 paths. Without -march supporting them the
// AVX-512 sources compile to nothing and this says false.
#include "kernels/cpu/matmul_avx512.h"

namespace mnemo::kernels::cpu::avx512 {

bool supported() {
#if MNEMO_AVX512
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  return ok;
#else
  return false;
#endif
}

#if !MNEMO_AVX512
// Never called: supported() is false. They keep the link whole.
void gemv(const float*, int64_t, const MatrixView&, float*) { __builtin_trap(); }
void gemm_f32(const float*, int64_t, const MatrixView&, float*) { __builtin_trap(); }
void gemm_bf16(const float*, int64_t, const MatrixView&, float*) { __builtin_trap(); }
#endif

}  // namespace mnemo::kernels::cpu::avx512
