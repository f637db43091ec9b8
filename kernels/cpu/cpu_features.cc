// Runtime CPU check for the AVX-512 paths. Without -march supporting them the
// AVX-512 sources compile to nothing and this says false.
#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/gemv_q8.h"

#include <atomic>

namespace mnemo::kernels::cpu::avx512 {
namespace {
std::atomic<bool> g_force_portable{false};
}  // namespace

void force_portable(bool on) { g_force_portable.store(on); }

bool supported() {
  if (g_force_portable.load(std::memory_order_relaxed)) return false;
#if MNEMO_AVX512
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  return ok;
#else
  return false;
#endif
}

}  // namespace mnemo::kernels::cpu::avx512

namespace mnemo::kernels::cpu::q8::avx512 {

bool vnni_supported() {
#if MNEMO_AVX512 && defined(__AVX512VNNI__)
  static const bool ok = __builtin_cpu_supports("avx512vnni");
  return ok && cpu::avx512::supported();
#else
  return false;
#endif
}

}  // namespace mnemo::kernels::cpu::q8::avx512

namespace mnemo::kernels::cpu::avx512 {

#if !MNEMO_AVX512
// Never called: supported() is false. They keep the link whole.
void gemv(const float*, int64_t, const MatrixView&, float*) { __builtin_trap(); }
void gemm_f32(const float*, int64_t, const MatrixView&, float*) { __builtin_trap(); }
void gemm_bf16(const float*, int64_t, const MatrixView&, float*) { __builtin_trap(); }
void gemv_many(const float*, int64_t, std::span<const MatrixView>, std::span<float* const>) { __builtin_trap(); }
#endif

}  // namespace mnemo::kernels::cpu::avx512
