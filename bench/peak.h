#pragma once
// Measured arithmetic peak: independent chains of 512-bit f32 FMAs or bf16
// dot products (vdpbf16ps, 64 flops each) in registers, per thread count.
// The denominator of GEMM efficiency; 0 where the CPU lacks the instructions.
namespace mnemo::bench {

enum class PeakKind { F32Fma, Bf16Dot };

double measure_peak_gflops(PeakKind kind, int threads);

}  // namespace mnemo::bench
