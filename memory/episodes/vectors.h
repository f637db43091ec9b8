#pragma once
// Dense row-major float matrices of embeddings (one row per window) and the
// unit-norm helpers every embedder and the clustering share.
#include <cstddef>
#include <span>
#include <vector>

namespace mnemo::memory::episodes {

struct Matrix {
  size_t rows = 0;
  size_t dim = 0;
  std::vector<float> data;  // [rows, dim]

  Matrix() = default;
  Matrix(size_t r, size_t d) : rows(r), dim(d), data(r * d, 0.0f) {}
  std::span<float> row(size_t i) { return {data.data() + i * dim, dim}; }
  std::span<const float> row(size_t i) const { return {data.data() + i * dim, dim}; }
  void append(std::span<const float> v);  // dim must match (or the matrix be empty)
};

float dot(std::span<const float> a, std::span<const float> b);
// Scales v to unit L2 norm; an all-zero v stays zero. Returns the old norm.
float normalize(std::span<float> v);

}  // namespace mnemo::memory::episodes
