#include "memory/episodes/vectors.h"

#include <cmath>
#include <stdexcept>

namespace mnemo::memory::episodes {

void Matrix::append(std::span<const float> v) {
  if (rows == 0 && data.empty()) dim = v.size();
  if (v.size() != dim) throw std::invalid_argument("Matrix::append: dimension mismatch");
  data.insert(data.end(), v.begin(), v.end());
  ++rows;
}

float dot(std::span<const float> a, std::span<const float> b) {
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += double(a[i]) * b[i];
  return static_cast<float>(s);
}

float normalize(std::span<float> v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  const double n = std::sqrt(s);
  if (n > 0)
    for (float& x : v) x = static_cast<float>(x / n);
  return static_cast<float>(n);
}

}  // namespace mnemo::memory::episodes
