// CPU matmul throughput per dtype, shape, token count and thread count:
// GB/s against the measured STREAM triad for the memory-bound GEMV (n <=
// 16), GFLOP/s for the GEMM, with OpenBLAS sgemm/sbgemm alongside.
//
// Weights cycle through copies filling 1 GiB, so every GEMV streams from DRAM
// as it does in decode (each layer's weights are touched once per token).
//
// Usage: mnemo_matmul_bench [--json PATH] [--threads 1,2] [--dtypes BF16,F16,F32,Q8_0]
//                           [--n 1,4,16,128,512] [--shapes 2048x2048,...] [--baselines 0|1]
#include <cblas.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/membw.h"
#include "bench/peak.h"
#include "bench/report.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/matmul.h"

namespace mnemo::bench {
namespace {

using kernels::DType;
using kernels::MatrixView;
namespace cpu = kernels::cpu;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

DType parse_dtype(const std::string& s) {
  return s == "F32" ? DType::F32 : s == "F16" ? DType::F16 : s == "Q8_0" ? DType::Q8_0 : DType::BF16;
}

struct Free {
  void operator()(void* p) const { std::free(p); }
};

// 1 GiB of finite values in every dtype: as bf16 about 2^-7..2^-6, as f16
// 1.0..1.25, as f32 pairs about 2^-7 (no denormals, no NaN).
class WeightPool {
 public:
  static constexpr size_t kBytes = size_t(1) << 30;
  // 2 MB pages, as the engine's resident and quantized weights ask for
  // (with 4 KB pages the GEMVs measured up to ~3x slower from the TLB misses).
  WeightPool() : data_(static_cast<uint16_t*>(std::aligned_alloc(size_t(2) << 20, kBytes))) {
    madvise(data_.get(), kBytes, MADV_HUGEPAGE);
    auto* p = data_.get();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < int64_t(kBytes / 2); ++i) p[i] = uint16_t(0x3c00 | ((i * 37) & 0xff));
  }
  // Copies of a matrix of the given bytes that fit, at least one.
  std::vector<const void*> copies(size_t bytes) const {
    const size_t stride = (bytes + 4095) & ~size_t(4095);
    std::vector<const void*> out;
    for (size_t off = 0; off + stride <= kBytes; off += stride) out.push_back(reinterpret_cast<const char*>(data_.get()) + off);
    return out;
  }

 private:
  std::unique_ptr<uint16_t[], Free> data_;
};

// Debian builds OpenBLAS without BUILD_BFLOAT16, so cblas_sbgemm is looked
// up at run time rather than linked.
using SbgemmFn = void (*)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, float,
                          const uint16_t*, blasint, const uint16_t*, blasint, float, float*, blasint);
SbgemmFn find_sbgemm() { return reinterpret_cast<SbgemmFn>(dlsym(RTLD_DEFAULT, "cblas_sbgemm")); }

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Timing {
  double median, best;  // seconds per call
};

// Median and fastest seconds of fn(copy) over cycling copies: two warm-up
// calls, then enough calls for ~0.4 s (at least 5, at most 200).
Timing time_calls(const std::vector<const void*>& copies, const std::function<void(const void*)>& fn) {
  size_t next = 0;
  for (int i = 0; i < 2; ++i) fn(copies[next++ % copies.size()]);
  std::vector<double> times;
  const double start = now();
  while (times.size() < 5 || (times.size() < 200 && now() - start < 0.4)) {
    const double t0 = now();
    fn(copies[next++ % copies.size()]);
    times.push_back(now() - t0);
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times.front()};
}

struct Shape {
  int64_t rows, cols;
};

Shape parse_shape(const std::string& s) {
  const size_t x = s.find('x');
  return {std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))};
}

}  // namespace

int run(int argc, char** argv) {
  const std::string path = flag(argc, argv, "--json", MNEMO_BENCH_DIR "/matmul_bench.json");
  std::vector<int> threads_list;
  for (const auto& t : split(flag(argc, argv, "--threads", "1,2"))) threads_list.push_back(std::stoi(t));
  std::vector<DType> dtypes;
  for (const auto& d : split(flag(argc, argv, "--dtypes", "BF16,F16,F32"))) dtypes.push_back(parse_dtype(d));
  std::vector<int64_t> ns;
  for (const auto& n : split(flag(argc, argv, "--n", "1,4,16,128,512"))) ns.push_back(std::stoll(n));
  std::vector<Shape> shapes;
  for (const auto& s : split(flag(argc, argv, "--shapes", "2048x2048,5632x2048,2048x5632,32000x2048")))
    shapes.push_back(parse_shape(s));
  const bool baselines = flag(argc, argv, "--baselines", "1") == "1";

  Table bw_table({"threads", "triad best GB/s", "triad median GB/s", "read best GB/s", "read median GB/s",
                  "f32 FMA peak GFLOP/s", "bf16 dot peak GFLOP/s"});
  std::vector<double> triad(3, 0), triad_best(3, 0), peak_f32(3, 0), peak_bf16(3, 0);
  for (int t : threads_list) {
    const size_t i = size_t(std::min(t, 2));
    const Bandwidth tr = measure_bandwidth(BandwidthKernel::Triad, t);
    const Bandwidth rd = measure_bandwidth(BandwidthKernel::Read, t);
    triad[i] = tr.median_gbps;
    triad_best[i] = tr.best_gbps;
    peak_f32[i] = measure_peak_gflops(PeakKind::F32Fma, t);
    peak_bf16[i] = measure_peak_gflops(PeakKind::Bf16Dot, t);
    bw_table.add({t, tr.best_gbps, tr.median_gbps, rd.best_gbps, rd.median_gbps, peak_f32[i], peak_bf16[i]});
  }
  bw_table.print();
  std::printf("\n");

  const SbgemmFn sbgemm = find_sbgemm();
  if (!sbgemm) std::printf("cblas_sbgemm: not exported by this libopenblas, skipped\n\n");
  WeightPool pool;
  // Median columns, then best-of columns (the fastest call against the
  // fastest triad pass) that approximate an idle machine when others compete
  // for the two cores. "% triad" of a GEMV row is against a triad taken just
  // before it (same threads): the shared machine's bandwidth drifts by tens
  // of percent over a run. "% peak" is against the bf16 dot peak when the
  // kernel rounds x to bf16, else the f32 FMA peak.
  Table table({"impl", "dtype", "rows x cols", "n", "threads", "ms", "GB/s", "% triad", "GFLOP/s", "% peak",
               "best ms", "best GB/s", "best % triad", "best GFLOP/s", "best % peak"});
  auto record = [&](const std::string& impl, DType dt, Shape s, int64_t n, int t, Timing tm, bool bf16_math) {
    const size_t i = size_t(std::min(t, 2));
    const double bytes = double(s.rows) * double(kernels::row_bytes(dt, s.cols)) + 4.0 * double(n * (s.rows + s.cols));
    const double flops = 2.0 * double(n * s.rows * s.cols);
    const double peak = bf16_math ? peak_bf16[i] : peak_f32[i];
    auto pct_peak = [&](double sec) { return peak > 0 ? 100.0 * flops / sec / 1e9 / peak : 0.0; };
    table.add({impl, std::string(kernels::dtype_name(dt)), std::to_string(s.rows) + "x" + std::to_string(s.cols), n, t,
               tm.median * 1e3, bytes / tm.median / 1e9, 100.0 * bytes / tm.median / 1e9 / triad[i],
               flops / tm.median / 1e9, pct_peak(tm.median), tm.best * 1e3, bytes / tm.best / 1e9,
               100.0 * bytes / tm.best / 1e9 / triad_best[i], flops / tm.best / 1e9, pct_peak(tm.best)});
    std::fprintf(stderr, ".");
  };

  for (int64_t n : ns)
    for (Shape s : shapes)
      for (DType dt : dtypes) {
        // Q8_0 reads the pool's bytes as blocks: f16 scales 1.0..1.25, int8 values.
        const auto copies = pool.copies(kernels::matrix_bytes(dt, s.rows, s.cols));
        std::vector<float> x(size_t(n * s.cols)), y(size_t(n * s.rows));
        for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 13) - 6) * 0.1f;
        for (int t : threads_list) {
          omp_set_num_threads(t);
          kernels::cpu::set_num_threads(t);
          auto mnemo = [&](const void* w) { cpu::matmul(x.data(), n, MatrixView{w, dt, s.rows, s.cols}, y.data()); };
          const MatrixView probe{copies[0], dt, s.rows, s.cols};
          if (n <= kernels::cpu::kGemvMaxTokens) {
            const Bandwidth bw = measure_bandwidth(BandwidthKernel::Triad, t, int64_t(256) << 20, 7);
            triad[size_t(std::min(t, 2))] = bw.median_gbps;
            triad_best[size_t(std::min(t, 2))] = bw.best_gbps;
          }
          record("mnemo", dt, s, n, t, time_calls(copies, mnemo), cpu::matmul_rounds_x_to_bf16(probe, n));
          if (n > kernels::cpu::kGemvMaxTokens && dt == DType::BF16) {
            cpu::set_matmul_precision(cpu::MatmulPrecision::Exact);
            record("mnemo exact (f32)", dt, s, n, t, time_calls(copies, mnemo), false);
            cpu::set_matmul_precision(cpu::MatmulPrecision::Fast);
          }
          if (!baselines || n <= kernels::cpu::kGemvMaxTokens) continue;
          openblas_set_num_threads(t);
          if (dt == DType::F32) {
            record("openblas sgemm", dt, s, n, t, time_calls(copies, [&](const void* w) {
                     cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(s.rows), int(s.cols), 1.0f,
                                 x.data(), int(s.cols), static_cast<const float*>(w), int(s.cols), 0.0f, y.data(),
                                 int(s.rows));
                   }), false);
          }
          if (dt == DType::BF16 && sbgemm) {
            std::vector<uint16_t> xb(x.size());
            record("openblas sbgemm (x to bf16)", dt, s, n, t, time_calls(copies, [&](const void* w) {
                     for (size_t i = 0; i < x.size(); ++i) xb[i] = kernels::f32_to_bf16(x[i]);
                     sbgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(s.rows), int(s.cols), 1.0f,
                                  xb.data(), int(s.cols), static_cast<const uint16_t*>(w), int(s.cols), 0.0f,
                                  y.data(), int(s.rows));
                   }), true);
          }
        }
      }
  std::fprintf(stderr, "\n");
  std::printf("OpenBLAS core: %s\n\n", openblas_get_corename());
  table.print();
  write_json(path, {{"bandwidth", bw_table.to_json()}, {"matmul", table.to_json()}});
  return 0;
}

}  // namespace mnemo::bench

int main(int argc, char** argv) { return mnemo::bench::run(argc, argv); }
