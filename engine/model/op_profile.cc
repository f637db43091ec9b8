#include "engine/model/op_profile.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace mnemo::engine::prof {
namespace {

struct Counters {
  std::atomic<uint64_t> calls{0}, bytes{0}, flops{0};
  std::atomic<int64_t> ns{0};
};
Counters g_ops[kPhases][kOps];
std::atomic<uint64_t> g_passes[kPhases];
std::atomic<uint8_t> g_phase{uint8_t(Phase::Prefill)};

constexpr const char* kNames[kOps] = {"embed",        "rmsnorm",      "qkv matmul", "rope",       "kv write",
                                      "attention",    "o matmul",     "residual add", "gate/up matmul", "silu*up",
                                      "down matmul",  "final norm",   "lm_head",    "sampling"};

}  // namespace

namespace detail {
std::atomic<bool> g_on{false};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void record(Op op, int64_t ns, uint64_t bytes, uint64_t flops) {
  Counters& c = g_ops[g_phase.load(std::memory_order_relaxed)][size_t(op)];
  c.calls.fetch_add(1, std::memory_order_relaxed);
  c.ns.fetch_add(ns, std::memory_order_relaxed);
  c.bytes.fetch_add(bytes, std::memory_order_relaxed);
  c.flops.fetch_add(flops, std::memory_order_relaxed);
}
}  // namespace detail

const char* op_name(Op op) { return int(op) < kOps ? kNames[int(op)] : "?"; }

void enable(bool on) { detail::g_on.store(on); }

void reset() {
  for (auto& phase : g_ops)
    for (Counters& c : phase) {
      c.calls = 0;
      c.ns = 0;
      c.bytes = 0;
      c.flops = 0;
    }
  for (auto& p : g_passes) p = 0;
}

void set_phase(Phase p) {
  if (!enabled()) return;
  g_phase.store(uint8_t(p), std::memory_order_relaxed);
  g_passes[size_t(p)].fetch_add(1, std::memory_order_relaxed);
}

int64_t Snapshot::total_ns(Phase p) const {
  int64_t t = 0;
  for (const OpTotals& o : ops[size_t(p)]) t += o.ns;
  return t;
}

Snapshot snapshot() {
  Snapshot s;
  for (int p = 0; p < kPhases; ++p) {
    s.passes[size_t(p)] = g_passes[p].load();
    for (int o = 0; o < kOps; ++o) {
      const Counters& c = g_ops[p][o];
      s.ops[size_t(p)][size_t(o)] = {c.calls.load(), c.ns.load(), c.bytes.load(), c.flops.load()};
    }
  }
  return s;
}

std::string table(const Snapshot& s, Phase p, double peak_gbps, int64_t wall_ns) {
  const int64_t ops_ns = s.total_ns(p);
  const int64_t other_ns = wall_ns > ops_ns ? wall_ns - ops_ns : 0;
  const double total = double(std::max<int64_t>(1, ops_ns + other_ns));
  std::ostringstream out;
  char line[200];
  std::snprintf(line, sizeof line, "%-15s %8s %10s %6s %10s %8s %8s %7s\n", "op", "calls", "total ms", "share",
                "MB moved", "GB/s", "GFLOP/s", peak_gbps > 0 ? "% peak" : "");
  out << line;
  uint64_t bytes = 0;
  auto row = [&](const char* name, uint64_t calls, int64_t ns, uint64_t b, uint64_t f) {
    const double sec = double(ns) * 1e-9;
    char gbps[16] = "", gflops[16] = "", pct[16] = "";
    if (b > 0 && ns > 0) std::snprintf(gbps, sizeof gbps, "%.1f", double(b) / sec * 1e-9);
    if (f > 0 && ns > 0) std::snprintf(gflops, sizeof gflops, "%.1f", double(f) / sec * 1e-9);
    if (b > 0 && ns > 0 && peak_gbps > 0) std::snprintf(pct, sizeof pct, "%.0f%%", 100.0 * double(b) / sec * 1e-9 / peak_gbps);
    std::snprintf(line, sizeof line, "%-15s %8llu %10.2f %5.1f%% %10.1f %8s %8s %7s\n", name,
                  static_cast<unsigned long long>(calls), double(ns) * 1e-6, 100.0 * double(ns) / total,
                  double(b) * 1e-6, gbps, gflops, pct);
    out << line;
  };
  for (int o = 0; o < kOps; ++o) {
    const OpTotals& t = s.ops[size_t(p)][size_t(o)];
    if (t.calls == 0) continue;
    row(kNames[o], t.calls, t.ns, t.bytes, t.flops);
    bytes += t.bytes;
  }
  if (wall_ns > 0) row("other", 0, other_ns, 0, 0);
  row("total", s.passes[size_t(p)], ops_ns + other_ns, bytes, 0);
  return out.str();
}

}  // namespace mnemo::engine::prof
