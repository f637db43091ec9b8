#pragma once
// Where a forward pass spends its time: wall time and bytes moved per
// operation category, accumulated over every pass while profiling is on
// (`mnemo run --profile`), and printed as GB/s against the machine's memory
// bandwidth. Off by default; a hook then costs one branch on a global.
//
// Timings are taken on the thread that drives the pass (the engine loop): a
// parallel operation counts from its dispatch to its join, so the table adds
// up to the pass's wall time and a slow join shows up in the op it ends.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace mnemo::engine::prof {

enum class Op : uint8_t {
  Embed,         // token embedding rows to f32
  RmsNorm,       // the two norms of each layer
  QkvMatmul,     // q, k, v projections (plus Qwen2's biases)
  Rope,          // rotary embedding of q and k
  KvWrite,       // the new keys and values into the cache
  Attention,     // scores, softmax and the weighted sum over the cache
  OMatmul,       // output projection
  ResidualAdd,   // x += o(att) and x += down(...)
  GateUpMatmul,  // gate and up projections
  Silu,          // silu(gate) * up
  DownMatmul,    // down projection
  FinalNorm,     // the norm before the LM head
  LmHead,        // logits
  Sampling,      // choosing the next token from the logits (the engine's)
  kCount
};
inline constexpr int kOps = int(Op::kCount);
const char* op_name(Op op);

// Decode: every item of the pass brings one token; else prefill. Ops count
// into the phase of the pass that last began (sampling after a prefill pass
// counts as prefill: it is part of the time to first token).
enum class Phase : uint8_t { Prefill, Decode };
inline constexpr int kPhases = 2;

namespace detail {
extern std::atomic<bool> g_on;
void record(Op op, int64_t ns, uint64_t bytes, uint64_t flops);
int64_t now_ns();
}  // namespace detail

inline bool enabled() { return detail::g_on.load(std::memory_order_relaxed); }
// Turns accumulation on or off (process-wide); reset() zeroes the counters.
void enable(bool on);
void reset();
void set_phase(Phase p);

// Times its own lifetime as one call of `op` moving `bytes` (and doing
// `flops`); add() raises them before it ends. Nothing happens when off.
class Scope {
 public:
  explicit Scope(Op op, uint64_t bytes = 0, uint64_t flops = 0) : op_(op), bytes_(bytes), flops_(flops) {
    if (enabled()) t0_ = detail::now_ns();
  }
  ~Scope() {
    if (t0_ >= 0) detail::record(op_, detail::now_ns() - t0_, bytes_, flops_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  void add(uint64_t bytes, uint64_t flops = 0) {
    bytes_ += bytes;
    flops_ += flops;
  }

 private:
  Op op_;
  uint64_t bytes_, flops_;
  int64_t t0_ = -1;
};

struct OpTotals {
  uint64_t calls = 0;
  int64_t ns = 0;
  uint64_t bytes = 0;
  uint64_t flops = 0;
};
struct Snapshot {
  std::array<std::array<OpTotals, kOps>, kPhases> ops{};  // [phase][op]
  std::array<uint64_t, kPhases> passes{};                 // forward passes begun per phase
  const OpTotals& at(Phase p, Op op) const { return ops[size_t(p)][size_t(op)]; }
  int64_t total_ns(Phase p) const;
};
Snapshot snapshot();

// A table for one phase: calls, total ms, share, MB moved, GB/s and (with
// peak_gbps > 0) its share of that peak per op; wall_ns > 0 adds an "other"
// row for the wall time no op accounts for (scheduling, streaming, idle).
std::string table(const Snapshot& s, Phase p, double peak_gbps = 0, int64_t wall_ns = 0);

}  // namespace mnemo::engine::prof
