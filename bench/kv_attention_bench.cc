// Decode attention over the paged KV cache with f32 and with bf16 blocks:
// one token's attention through every layer (as a decode step runs it) at
// several context lengths, the two element types interleaved (A B A B) for
// several rounds, medians. Prints microseconds per token, the GB/s of KV
// bytes read, and the f32 / bf16 time ratio (the target is the byte ratio,
// 2.0, where attention is bandwidth-bound).
//
//   mnemo_kv_attention_bench [--threads N] [--rounds R] [--json PATH] [--shape 123M|1.1B]
//                            [--clock wall|cpu]
// --clock cpu times the process's CPU seconds instead of wall seconds: on a
// shared, oversubscribed machine a 1-thread run's wall time mostly measures
// the wait for a core.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <random>
#include <vector>

#include "bench/report.h"
#include "kernels/cpu/kv_rows.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace cpu = mnemo::kernels::cpu;
using mnemo::kernels::KvDType;

namespace {

struct Shape {
  const char* name;
  int64_t layers, heads, kv_heads, head_dim;
};

// One layer's blocks of one sequence, both element types (same values),
// laid out as the cache's pool holds a fresh sequence: one array per layer
// of [blocks][kv_heads][block][head_dim], the sequence's blocks in order.
struct Layer {
  std::vector<float> kf, vf;
  std::vector<uint16_t> kb, vb;
  std::vector<const void*> kf_p, vf_p, kb_p, vb_p;
};

constexpr int64_t kBlock = 16;

Layer make_layer(const Shape& s, int64_t ctx, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Layer L;
  const int64_t nb = ctx / kBlock, elems = s.kv_heads * kBlock * s.head_dim;
  L.kf.resize(size_t(nb * elems));
  L.vf.resize(L.kf.size());
  for (float& x : L.kf) x = dist(rng);
  for (float& x : L.vf) x = dist(rng);
  L.kb.resize(L.kf.size());
  L.vb.resize(L.kf.size());
  cpu::f32_row_to_bf16(L.kf.data(), nb * elems, L.kb.data());
  cpu::f32_row_to_bf16(L.vf.data(), nb * elems, L.vb.data());
  for (int64_t b = 0; b < nb; ++b) {
    L.kf_p.push_back(L.kf.data() + b * elems);
    L.vf_p.push_back(L.vf.data() + b * elems);
    L.kb_p.push_back(L.kb.data() + b * elems);
    L.vb_p.push_back(L.vb.data() + b * elems);
  }
  return L;
}

// Seconds for one decode token's attention through all layers.
bool g_cpu_clock = false;

double now_s() {
  if (g_cpu_clock) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double one_token(const Shape& s, int64_t ctx, std::vector<Layer>& layers, KvDType t, const std::vector<float>& q,
                 std::vector<float>& out) {
  const double t0 = now_s();
  for (Layer& L : layers) {
    const bool bf = t == KvDType::BF16;
    const cpu::PagedKvView view{bf ? L.kb_p : L.kf_p, bf ? L.vb_p : L.vf_p, kBlock, s.kv_heads, s.head_dim, {}, {}, t};
    cpu::paged_attention(q.data(), 1, s.heads, ctx - 1, view, 0.125f, out.data());
  }
  return now_s() - t0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = std::stoi(mnemo::bench::flag(argc, argv, "--threads", "1"));
  const int rounds = std::stoi(mnemo::bench::flag(argc, argv, "--rounds", "5"));
  const std::string json_path =
      mnemo::bench::flag(argc, argv, "--json", std::string(MNEMO_BENCH_DIR) + "/kv_attention_bench.json");
  const std::string only_shape = mnemo::bench::flag(argc, argv, "--shape", "");
  g_cpu_clock = mnemo::bench::flag(argc, argv, "--clock", "wall") == "cpu";
  // The kernels' team (parallel.h) takes its size from set_num_threads, not OpenMP's.
  cpu::set_num_threads(threads);
  omp_set_num_threads(threads);
  const Shape shapes[] = {{"123M (12 layers, 12 KV heads, d 64)", 12, 12, 12, 64},
                          {"1.1B (22 layers, 4 of 32 KV heads, d 64)", 22, 32, 4, 64}};
  std::printf("decode attention, one token through every layer; %d thread(s), %d rounds interleaved; %s clock; load %s\n\n",
              threads, rounds, g_cpu_clock ? "cpu" : "wall", mnemo::bench::loadavg().c_str());
  mnemo::bench::Table table({"model", "context", "f32 us/token", "bf16 us/token", "f32 GB/s", "bf16 GB/s",
                             "f32/bf16 time", "target (bytes)"});
  std::mt19937 rng(1);
  for (const Shape& s : shapes)
    for (int64_t ctx : {int64_t(1024), int64_t(4096), int64_t(16384)}) {
      if (!only_shape.empty() && std::string(s.name).find(only_shape) != 0) continue;
      std::vector<Layer> layers;
      for (int64_t l = 0; l < s.layers; ++l) layers.push_back(make_layer(s, ctx, rng));
      std::vector<float> q(size_t(s.heads * s.head_dim), 0.1f), out(q.size());
      std::vector<double> tf, tb;
      one_token(s, ctx, layers, KvDType::F32, q, out);  // warm the page tables
      one_token(s, ctx, layers, KvDType::BF16, q, out);
      for (int r = 0; r < rounds; ++r) {
        tf.push_back(one_token(s, ctx, layers, KvDType::F32, q, out));
        tb.push_back(one_token(s, ctx, layers, KvDType::BF16, q, out));
      }
      const double mf = median(tf), mb = median(tb);
      const double bytes_f32 = double(s.layers * 2 * s.kv_heads * ctx * s.head_dim * 4);
      table.add({s.name, ctx, mf * 1e6, mb * 1e6, bytes_f32 / mf / 1e9, bytes_f32 / 2 / mb / 1e9, mf / mb, 2.0});
    }
  table.print();
  mnemo::bench::write_json(json_path, {{"threads", threads}, {"rounds", rounds}, {"load", mnemo::bench::loadavg()},
                                       {"rows", table.to_json()}});
  return 0;
}
