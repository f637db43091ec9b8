#include "memory/compress/layer_budgets.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace mnemo::memory::compress {

std::vector<int64_t> layer_budgets(std::span<const double> sigma, int64_t per_layer, double alpha,
                                   std::optional<int64_t> floor) {
  const size_t L = sigma.size();
  if (L == 0) throw std::invalid_argument("layer_budgets: no layers");
  if (per_layer < 1) throw std::invalid_argument("layer_budgets: per-layer budget " + std::to_string(per_layer) + " < 1");
  if (!(alpha >= 0)) throw std::invalid_argument("layer_budgets: alpha must be >= 0");
  const int64_t lo = floor.value_or(per_layer / 4);
  if (lo < 0 || lo > per_layer)
    throw std::invalid_argument("layer_budgets: floor " + std::to_string(lo) + " outside [0, " +
                                std::to_string(per_layer) + "]");
  const int64_t total = per_layer * int64_t(L);

  std::vector<double> w(L);
  for (size_t l = 0; l < L; ++l) {
    const double s = std::isnan(sigma[l]) ? 0.0 : std::clamp(sigma[l], -1.0, 1.0);
    w[l] = std::pow(1.0 - s, alpha);
  }
  // Water-filling: pin layers whose proportional share falls under the floor,
  // then share what is left among the others, until no share is under it.
  std::vector<bool> pinned(L, false);
  std::vector<double> share(L, double(lo));
  for (;;) {
    double free_w = 0;
    size_t free_n = 0;
    for (size_t l = 0; l < L; ++l)
      if (!pinned[l]) free_w += w[l], ++free_n;
    if (free_n == 0) break;
    const double left = double(total - lo * int64_t(L - free_n));
    bool changed = false;
    for (size_t l = 0; l < L; ++l) {
      if (pinned[l]) continue;
      share[l] = free_w > 0 ? left * w[l] / free_w : left / double(free_n);
      if (share[l] < double(lo)) pinned[l] = changed = true;
    }
    if (!changed) break;
    for (size_t l = 0; l < L; ++l)
      if (pinned[l]) share[l] = double(lo);
  }
  // Integer slots: floors, then the remainder to the largest fractions.
  std::vector<int64_t> m(L);
  for (size_t l = 0; l < L; ++l) m[l] = std::max(lo, int64_t(std::floor(share[l])));
  int64_t rest = total - std::accumulate(m.begin(), m.end(), int64_t(0));
  std::vector<size_t> order(L);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return share[a] - std::floor(share[a]) > share[b] - std::floor(share[b]);
  });
  // rest is below L in exact arithmetic; loop to absorb rounding either way.
  for (size_t i = 0; rest > 0; i = (i + 1) % L, --rest) ++m[order[i]];
  for (size_t i = 0; rest < 0; ++i) {
    const size_t l = order[L - 1 - i % L];
    if (m[l] > lo) --m[l], ++rest;
  }
  return m;
}

std::vector<int64_t> uniform_budgets(int64_t layers, int64_t per_layer) {
  if (layers < 1 || per_layer < 0) throw std::invalid_argument("uniform_budgets: need layers >= 1, budget >= 0");
  return std::vector<int64_t>(size_t(layers), per_layer);
}

}  // namespace mnemo::memory::compress
