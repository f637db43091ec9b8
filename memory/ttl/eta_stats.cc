#include "memory/ttl/eta_stats.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mnemo::memory::ttl {

EtaStats::EtaStats(const EtaStats& other) {
  std::lock_guard lock(other.mu_);
  s_ = other.s_;
}

EtaStats& EtaStats::operator=(const EtaStats& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mu_, other.mu_);
  s_ = other.s_;
  return *this;
}

void EtaStats::add_program(int64_t turns) {
  if (turns < 1) return;
  // Closed forms over k = 1..N and r = N - k = 0..N-1, so a program costs
  // O(1) whatever its length.
  const long double N = static_cast<long double>(turns);
  const long double sum_k = N * (N + 1) / 2;
  const long double sum_kk = N * (N + 1) * (2 * N + 1) / 6;
  const long double sum_r = N * (N - 1) / 2;
  const long double sum_rr = (N - 1) * N * (2 * N - 1) / 6;
  const long double sum_kr = N * sum_k - sum_kk;  // sum k (N - k)
  std::lock_guard lock(mu_);
  s_.programs += 1;
  s_.n += N;
  s_.k += sum_k;
  s_.r += sum_r;
  s_.kk += sum_kk;
  s_.rr += sum_rr;
  s_.kr += sum_kr;
}

double EtaStats::eta() const {
  std::lock_guard lock(mu_);
  const long double n = s_.n;
  if (n < 2) return 0;
  const long double cov = n * s_.kr - s_.k * s_.r;
  const long double var_k = n * s_.kk - s_.k * s_.k;
  const long double var_r = n * s_.rr - s_.r * s_.r;
  // Relative floor: one turn count repeated has zero variance on paper but
  // rounding leaves a crumb; a correlation of crumbs means nothing.
  const long double eps = 1e-12L * n * std::max(s_.kk, 1.0L);
  if (var_k <= eps || var_r <= eps) return 0;
  const long double corr = cov / std::sqrt(var_k * var_r);
  return static_cast<double>(std::clamp(-corr, -1.0L, 1.0L));
}

int64_t EtaStats::programs() const {
  std::lock_guard lock(mu_);
  return s_.programs;
}

nlohmann::json EtaStats::to_json() const {
  std::lock_guard lock(mu_);
  return {{"programs", s_.programs},
          {"pairs", static_cast<double>(s_.n)},
          {"sum_k", static_cast<double>(s_.k)},
          {"sum_r", static_cast<double>(s_.r)},
          {"sum_kk", static_cast<double>(s_.kk)},
          {"sum_rr", static_cast<double>(s_.rr)},
          {"sum_kr", static_cast<double>(s_.kr)}};
}

void EtaStats::load(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("eta stats: expected a JSON object");
  auto number = [&](const char* field) -> long double {
    if (!j.contains(field)) throw std::invalid_argument(std::string("eta stats: '") + field + "' is missing");
    const auto& v = j.at(field);
    if (!v.is_number()) throw std::invalid_argument(std::string("eta stats: '") + field + "' must be a number");
    double x = v.get<double>();
    if (!std::isfinite(x) || x < 0) {
      throw std::invalid_argument(std::string("eta stats: '") + field + "' must be finite and non-negative");
    }
    return x;
  };
  Sums s;
  const auto& p = j.contains("programs") ? j.at("programs") : nlohmann::json();
  if (!p.is_number_integer() || p.get<int64_t>() < 0) {
    throw std::invalid_argument("eta stats: 'programs' must be a non-negative integer");
  }
  s.programs = p.get<int64_t>();
  s.n = number("pairs");
  s.k = number("sum_k");
  s.r = number("sum_r");
  s.kk = number("sum_kk");
  s.rr = number("sum_rr");
  s.kr = number("sum_kr");
  if (s.n < static_cast<long double>(s.programs)) {
    throw std::invalid_argument("eta stats: 'pairs' is smaller than 'programs'");
  }
  std::lock_guard lock(mu_);
  s_ = s;
}

}  // namespace mnemo::memory::ttl
