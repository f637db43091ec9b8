#include "memory/ttl/ttl_solver.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace mnemo::memory::ttl {

double solve_tau(std::span<const double> sorted, double T, double eta, double reload) {
  assert(std::is_sorted(sorted.begin(), sorted.end()));
  const double gain = T * eta + reload;
  if (sorted.empty() || !std::isfinite(gain)) return 0;
  const double n = static_cast<double>(sorted.size());
  // A relative slack so that values equal on paper but not in rounding
  // still count as ties and go to the smaller tau.
  const double slack = 1e-12 * std::max(1.0, std::abs(gain));

  // tau = 0: P(0) counts samples that are exactly 0 (a tool that returns at once).
  size_t at_zero = static_cast<size_t>(std::upper_bound(sorted.begin(), sorted.end(), 0.0) - sorted.begin());
  double best_tau = 0;
  double best = static_cast<double>(at_zero) / n * gain;
  for (size_t i = at_zero; i < sorted.size(); ++i) {
    const double tau = sorted[i];
    // P jumps only at the last of equal samples; earlier copies are not candidates.
    if (i + 1 < sorted.size() && sorted[i + 1] == tau) continue;
    if (!std::isfinite(tau)) break;
    const double value = static_cast<double>(i + 1) / n * gain - tau;
    if (value > best + slack) {
      best = value;
      best_tau = tau;
    }
  }
  return best_tau;
}

}  // namespace mnemo::memory::ttl
