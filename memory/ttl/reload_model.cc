#include "memory/ttl/reload_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

namespace mnemo::memory::ttl {
namespace {

using Vec3 = std::array<long double, 3>;

// Moments of the measurements with tokens scaled to [0, 1] (so t^4 does not
// swamp the normal equations): sx[i] = sum x^i, sxy[i] = sum x^i y.
struct Moments {
  long double sx[5] = {};
  long double sxy[3] = {};
};

// Least squares over the basis functions 1, x, x^2 marked in `use` (the
// others fixed at 0), from the normal equations.
std::optional<Vec3> fit(const Moments& mo, const std::array<bool, 3>& use) {
  int idx[3];
  int m = 0;
  for (int i = 0; i < 3; ++i)
    if (use[i]) idx[m++] = i;
  long double A[3][4] = {};
  for (int r = 0; r < m; ++r) {
    for (int c = 0; c < m; ++c) A[r][c] = mo.sx[idx[r] + idx[c]];
    A[r][m] = mo.sxy[idx[r]];
  }
  for (int col = 0; col < m; ++col) {
    int piv = col;
    for (int r = col + 1; r < m; ++r)
      if (std::abs(A[r][col]) > std::abs(A[piv][col])) piv = r;
    if (std::abs(A[piv][col]) < 1e-18L) return std::nullopt;
    if (piv != col)
      for (int c = 0; c <= m; ++c) std::swap(A[col][c], A[piv][c]);
    for (int r = 0; r < m; ++r) {
      if (r == col) continue;
      const long double f = A[r][col] / A[col][col];
      for (int c = col; c <= m; ++c) A[r][c] -= f * A[col][c];
    }
  }
  Vec3 beta{0, 0, 0};
  for (int r = 0; r < m; ++r) beta[idx[r]] = A[r][m] / A[r][r];
  return beta;
}

}  // namespace

ReloadModel::ReloadModel(size_t history) : history_(std::max<size_t>(history, 1)) {}

ReloadModel::ReloadModel(const ReloadModel& other) {
  std::lock_guard lock(other.mu_);
  history_ = other.history_;
  points_ = other.points_;
  coef_ = other.coef_;
}

ReloadModel& ReloadModel::operator=(const ReloadModel& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mu_, other.mu_);
  history_ = other.history_;
  points_ = other.points_;
  coef_ = other.coef_;
  return *this;
}

void ReloadModel::add(int64_t tokens, double seconds) {
  if (tokens < 0 || !std::isfinite(seconds) || seconds < 0) return;
  std::lock_guard lock(mu_);
  points_.emplace_back(tokens, seconds);
  while (points_.size() > history_) points_.pop_front();
  refit();
}

void ReloadModel::refit() {
  coef_ = {0, 0, 0};
  if (points_.empty()) return;
  // Up to three distinct lengths decide the family; more are not needed.
  int64_t seen[3];
  size_t distinct = 0;
  int64_t max_tokens = 0;
  long double sum_t = 0, sum_y = 0;
  for (const auto& [t, s] : points_) {
    if (distinct < 3 && std::find(seen, seen + distinct, t) == seen + distinct) seen[distinct++] = t;
    max_tokens = std::max(max_tokens, t);
    sum_t += t;
    sum_y += s;
  }
  if (distinct == 1) {
    // One prompt length measured: prefill is mostly proportional to length.
    if (max_tokens == 0) coef_[0] = static_cast<double>(sum_y / points_.size());
    else coef_[1] = static_cast<double>(sum_y / sum_t);
    return;
  }

  const long double scale = static_cast<long double>(max_tokens);
  Moments mo;
  for (const auto& [t, s] : points_) {
    const long double x = t / scale;
    long double xi = 1;
    for (int i = 0; i < 5; ++i, xi *= x) {
      mo.sx[i] += xi;
      if (i < 3) mo.sxy[i] += xi * s;
    }
  }
  auto sse = [&](const Vec3& b) {
    long double e2 = 0;
    for (const auto& [t, s] : points_) {
      const long double x = t / scale;
      const long double e = s - (b[0] + b[1] * x + b[2] * x * x);
      e2 += e * e;
    }
    return e2;
  };
  // Least squares with b, c >= 0: the optimum lies on one face of the
  // constraint set, so try each (a always free) and keep the best feasible.
  // Two distinct lengths cannot pin down a parabola: linear faces only.
  std::vector<std::array<bool, 3>> faces = {{true, true, false}, {true, false, false}};
  if (distinct >= 3) faces.insert(faces.begin(), {{true, true, true}, {true, false, true}});
  std::optional<Vec3> best;
  long double best_sse = std::numeric_limits<long double>::infinity();
  for (const auto& use : faces) {
    auto b = fit(mo, use);
    if (!b || (*b)[1] < 0 || (*b)[2] < 0) continue;
    const long double e = sse(*b);
    if (e < best_sse) {
      best_sse = e;
      best = b;
    }
  }
  if (!best) return;  // the constant face always solves; kept for safety
  coef_ = {static_cast<double>((*best)[0]), static_cast<double>((*best)[1] / scale),
           static_cast<double>((*best)[2] / (scale * scale))};
}

double ReloadModel::predict(int64_t tokens) const {
  if (tokens <= 0) tokens = 0;
  std::lock_guard lock(mu_);
  const double t = static_cast<double>(tokens);
  // b, c >= 0 make it non-decreasing for t >= 0; the floor keeps it so.
  return std::max(0.0, coef_[0] + coef_[1] * t + coef_[2] * t * t);
}

size_t ReloadModel::size() const {
  std::lock_guard lock(mu_);
  return points_.size();
}

std::array<double, 3> ReloadModel::coefficients() const {
  std::lock_guard lock(mu_);
  return coef_;
}

}  // namespace mnemo::memory::ttl
