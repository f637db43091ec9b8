#pragma once

#include <span>

namespace mnemo::memory::ttl {

// Continuum's TTL: tau* = argmax over tau in {0} U samples of
//   P(tau) * (T * eta + reload) - tau,
// P the empirical CDF of `sorted` (fraction of samples <= tau): pinning for
// tau pays tau seconds of held memory and, with probability P(tau), saves the
// queueing delay the program would have met again (T, weighted by eta) and
// the reload of its KV. Ties go to the smallest tau; empty samples give 0.
// `sorted` must be ascending.
double solve_tau(std::span<const double> sorted, double T, double eta, double reload);

}  // namespace mnemo::memory::ttl
