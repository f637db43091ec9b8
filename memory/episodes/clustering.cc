#include "memory/episodes/clustering.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <omp.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace mnemo::memory::episodes {
namespace {

// Small problems run on one thread: on a loaded machine OpenMP barriers cost
// far more than the arithmetic. omp_set_num_threads is per calling thread.
class ThreadCap {
 public:
  explicit ThreadCap(double flops) : saved_(omp_get_max_threads()) {
    if (flops < 5e7) omp_set_num_threads(1);
  }
  ~ThreadCap() { omp_set_num_threads(saved_); }
  ThreadCap(const ThreadCap&) = delete;
  ThreadCap& operator=(const ThreadCap&) = delete;

 private:
  int saved_;
};

std::vector<int32_t> assign_nearest(const Matrix& x, const Matrix& centroids) {
  Router router(centroids);
  std::vector<int32_t> out(x.rows);
  const auto routes = router.route_all(x);
  for (size_t i = 0; i < x.rows; ++i) out[i] = routes[i].episode;
  return out;
}

}  // namespace

Episodes kmeans_episodes(const Matrix& x, size_t episodes, const KMeansOptions& options, size_t representatives) {
  const size_t k = std::min(episodes, x.rows);
  if (k == 0) return {};
  if (k == x.rows) {  // no fewer windows than episodes: each window is its own episode
    std::vector<int32_t> a(k);
    std::iota(a.begin(), a.end(), 0);
    return episodes_from_assignment(x, std::move(a), k, representatives);
  }
  ThreadCap cap(double(x.rows) * k * x.dim * options.niter * options.nredo * 2);
  faiss::ClusteringParameters p;
  p.niter = options.niter;
  p.nredo = options.nredo;
  p.spherical = true;
  p.seed = options.seed;
  p.verbose = false;
  p.min_points_per_centroid = 1;  // conversations are small; faiss would warn below 39 per centroid
  p.max_points_per_centroid = options.max_points_per_episode;
  faiss::Clustering clus(static_cast<int>(x.dim), static_cast<int>(k), p);
  faiss::IndexFlatL2 index(static_cast<faiss::Index::idx_t>(x.dim));  // unit rows: L2-nearest = cosine-nearest
  clus.train(static_cast<faiss::Index::idx_t>(x.rows), x.data.data(), index);

  Matrix centroids(k, x.dim);
  std::copy(clus.centroids.begin(), clus.centroids.begin() + k * x.dim, centroids.data.begin());
  for (size_t c = 0; c < k; ++c) normalize(centroids.row(c));
  std::vector<int32_t> assignment = assign_nearest(x, centroids);

  // A centroid no window is nearest to (duplicate windows can leave one) is
  // dropped: routing a question there would find no representative to cache.
  std::vector<int32_t> keep(k, -1);
  for (int32_t a : assignment) keep[a] = 0;
  Episodes e;
  for (size_t c = 0; c < k; ++c)
    if (keep[c] == 0) {
      keep[c] = static_cast<int32_t>(e.centroids.rows);
      e.centroids.append(centroids.row(c));
    }
  for (auto& a : assignment) a = keep[a];
  e.assignment = std::move(assignment);
  e.representatives = nearest_representatives(x, e, representatives);
  return e;
}

Episodes episodes_from_assignment(const Matrix& x, std::vector<int32_t> assignment, size_t episodes,
                                  size_t representatives) {
  if (assignment.size() != x.rows) throw std::invalid_argument("episodes_from_assignment: one episode per window");
  Episodes e;
  e.centroids = Matrix(episodes, x.dim);
  for (size_t i = 0; i < x.rows; ++i) {
    const int32_t c = assignment[i];
    if (c < 0 || static_cast<size_t>(c) >= episodes)
      throw std::invalid_argument("episodes_from_assignment: episode out of range");
    auto row = e.centroids.row(c);
    const auto xi = x.row(i);
    for (size_t d = 0; d < x.dim; ++d) row[d] += xi[d];
  }
  for (size_t c = 0; c < episodes; ++c) normalize(e.centroids.row(c));
  e.assignment = std::move(assignment);
  e.representatives = nearest_representatives(x, e, representatives);
  return e;
}

std::vector<std::vector<size_t>> nearest_representatives(const Matrix& x, const Episodes& episodes, size_t count) {
  std::vector<std::vector<std::pair<float, size_t>>> members(episodes.count());
  for (size_t i = 0; i < x.rows && i < episodes.assignment.size(); ++i) {
    const int32_t c = episodes.assignment[i];
    members[c].push_back({dot(x.row(i), episodes.centroids.row(c)), i});
  }
  std::vector<std::vector<size_t>> out(episodes.count());
  for (size_t c = 0; c < members.size(); ++c) {
    auto& m = members[c];
    // Highest cosine first; ties go to the earlier window so the choice is stable.
    const size_t n = std::min(count, m.size());
    std::partial_sort(m.begin(), m.begin() + n, m.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (size_t j = 0; j < n; ++j) out[c].push_back(m[j].second);
    std::sort(out[c].begin(), out[c].end());
  }
  return out;
}

float silhouette_cosine(const Matrix& x, std::span<const int32_t> assignment) {
  const size_t n = x.rows;
  if (assignment.size() != n || n < 3) return 0.0f;
  const int32_t k = *std::max_element(assignment.begin(), assignment.end()) + 1;
  std::vector<size_t> size(k, 0);
  for (int32_t a : assignment) ++size[a];
  const auto nonempty = std::count_if(size.begin(), size.end(), [](size_t s) { return s > 0; });
  if (nonempty < 2 || static_cast<size_t>(nonempty) > n - 1) return 0.0f;

  // All pairwise inner products through faiss (BLAS), n x n.
  ThreadCap cap(double(n) * n * x.dim * 2);
  faiss::IndexFlatIP index(static_cast<faiss::Index::idx_t>(x.dim));
  index.add(static_cast<faiss::Index::idx_t>(n), x.data.data());
  std::vector<float> sims(n * n);
  std::vector<faiss::Index::idx_t> ids(n * n);
  index.search(static_cast<faiss::Index::idx_t>(n), x.data.data(), static_cast<faiss::Index::idx_t>(n), sims.data(), ids.data());

  double total = 0;
  std::vector<double> sum(k);
  for (size_t i = 0; i < n; ++i) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t j = 0; j < n; ++j) {
      const size_t other = static_cast<size_t>(ids[i * n + j]);
      if (other != i) sum[assignment[other]] += 1.0 - sims[i * n + j];
    }
    const int32_t own = assignment[i];
    if (size[own] < 2) continue;  // s = 0
    const double a = sum[own] / double(size[own] - 1);
    double b = 1e300;
    for (int32_t c = 0; c < k; ++c)
      if (c != own && size[c] > 0) b = std::min(b, sum[c] / double(size[c]));
    const double m = std::max(a, b);
    if (m > 0) total += (b - a) / m;
  }
  return static_cast<float>(total / double(n));
}

Router::Router(const Matrix& centroids) : index_(std::make_unique<faiss::IndexFlatIP>(static_cast<faiss::Index::idx_t>(centroids.dim))) {
  if (centroids.rows > 0) index_->add(static_cast<faiss::Index::idx_t>(centroids.rows), centroids.data.data());
}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

size_t Router::size() const { return static_cast<size_t>(index_->ntotal); }

Route Router::route(std::span<const float> query) const {
  if (index_->ntotal == 0) return {};
  if (query.size() != static_cast<size_t>(index_->d)) throw std::invalid_argument("Router::route: dimension mismatch");
  if (dot(query, query) == 0.0f) return {0, 0.0f};  // nothing known: every centroid ties at 0
  float sim = 0;
  faiss::Index::idx_t id = -1;
  index_->search(1, query.data(), 1, &sim, &id);
  return {static_cast<int32_t>(id), sim};
}

std::vector<Route> Router::route_all(const Matrix& queries) const {
  std::vector<Route> out(queries.rows);
  if (index_->ntotal == 0 || queries.rows == 0) return out;
  if (queries.dim != static_cast<size_t>(index_->d)) throw std::invalid_argument("Router::route_all: dimension mismatch");
  std::vector<float> sims(queries.rows);
  std::vector<faiss::Index::idx_t> ids(queries.rows);
  ThreadCap cap(double(queries.rows) * index_->ntotal * queries.dim * 2);
  index_->search(static_cast<faiss::Index::idx_t>(queries.rows), queries.data.data(), 1, sims.data(), ids.data());
  for (size_t i = 0; i < queries.rows; ++i)
    out[i] = dot(queries.row(i), queries.row(i)) == 0.0f ? Route{0, 0.0f} : Route{static_cast<int32_t>(ids[i]), sims[i]};
  return out;
}

}  // namespace mnemo::memory::episodes
