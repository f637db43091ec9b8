#include "memory/ttl/reload_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <vector>

namespace mnemo::memory::ttl {
namespace {

using Vec3 = std::array<long double, 3>;

// Least squares over the basis functions in `use` (others fixed at 0), by the
// normal equations on tokens scaled to [0, 1] so t^4 does not swamp them.
std::optional<Vec3> fit(const std::vector<long double>& x, const std::vector<long double>& y,
                        const std::array<bool, 3>& use) {
  std::vector<int> idx;
  for (int i = 0; i < 3; ++i)
    if (use[i]) idx.push_back(i);
  const size_t m = idx.size();
  long double A[3][4] = {};
  for (size_t p = 0; p < x.size(); ++p) {
    const long double basis[3] = {1, x[p], x[p] * x[p]};
    for (size_t r = 0; r < m; ++r) {
      for (size_t c = 0; c < m; ++c) A[r][c] += basis[idx[r]] * basis[idx[c]];
      A[r][m] += basis[idx[r]] * y[p];
    }
  }
  for (size_t col = 0; col < m; ++col) {
    size_t piv = col;
    for (size_t r = col + 1; r < m; ++r)
      if (std::abs(A[r][col]) > std::abs(A[piv][col])) piv = r;
    if (std::abs(A[piv][col]) < 1e-18L) return std::nullopt;
    if (piv != col)
      for (size_t c = 0; c <= m; ++c) std::swap(A[col][c], A[piv][c]);
    for (size_t r = 0; r < m; ++r) {
      if (r == col) continue;
      const long double f = A[r][col] / A[col][col];
      for (size_t c = col; c <= m; ++c) A[r][c] -= f * A[col][c];
    }
  }
  Vec3 beta{0, 0, 0};
  for (size_t r = 0; r < m; ++r) beta[idx[r]] = A[r][m] / A[r][r];
  return beta;
}

long double sse(const std::vector<long double>& x, const std::vector<long double>& y, const Vec3& b) {
  long double s = 0;
  for (size_t p = 0; p < x.size(); ++p) {
    const long double e = y[p] - (b[0] + b[1] * x[p] + b[2] * x[p] * x[p]);
    s += e * e;
  }
  return s;
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
  std::set<int64_t> distinct;
  int64_t max_tokens = 0;
  long double mean_t = 0, mean_y = 0;
  for (const auto& [t, s] : points_) {
    distinct.insert(t);
    max_tokens = std::max(max_tokens, t);
    mean_t += t;
    mean_y += s;
  }
  mean_t /= points_.size();
  mean_y /= points_.size();
  if (distinct.size() == 1) {
    // One prompt length measured: prefill is mostly proportional to length.
    if (max_tokens == 0) coef_[0] = static_cast<double>(mean_y);
    else coef_[1] = static_cast<double>(mean_y / mean_t);
    return;
  }

  const long double scale = static_cast<long double>(max_tokens);
  std::vector<long double> x, y;
  for (const auto& [t, s] : points_) {
    x.push_back(t / scale);
    y.push_back(s);
  }
  // Least squares with b, c >= 0: the optimum lies on one face of the
  // constraint set, so try each (a always free) and keep the best feasible.
  // Two distinct lengths cannot pin down a parabola: linear faces only.
  std::vector<std::array<bool, 3>> faces = {{true, true, false}, {true, false, false}};
  if (distinct.size() >= 3) {
    faces.insert(faces.begin(), {{true, true, true}, {true, false, true}});
  }
  std::optional<Vec3> best;
  long double best_sse = std::numeric_limits<long double>::infinity();
  for (const auto& use : faces) {
    auto b = fit(x, y, use);
    if (!b || (*b)[1] < 0 || (*b)[2] < 0) continue;
    const long double e = sse(x, y, *b);
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
