#pragma once
// Episodes from window embeddings: FAISS spherical k-means (or a given
// assignment, e.g. time-ordered chunks), each episode's representative
// windows, cosine routing of a question to an episode, and the silhouette
// score that says whether the partition has any structure at all.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "memory/episodes/vectors.h"

namespace faiss {
struct IndexFlatIP;
}

namespace mnemo::memory::episodes {

struct KMeansOptions {
  int seed = 1234;
  int niter = 25;   // Lloyd iterations per run
  int nredo = 10;   // runs from different random initialisations; the best objective wins
  // Bounded work: at most this many windows per episode are sampled to train
  // the centroids (all windows are then assigned).
  int max_points_per_episode = 256;
};

struct Episodes {
  Matrix centroids;                               // [E, dim], unit rows (zero for an empty episode)
  std::vector<int32_t> assignment;                // [windows] -> episode
  std::vector<std::vector<size_t>> representatives;  // [E] -> window indices, ascending (time order)

  size_t count() const { return centroids.rows; }
};

// k-means into min(episodes, windows) episodes of the unit rows of x (fewer
// when a centroid ends up with no window: it is dropped, so every episode has
// members); deterministic for a seed. Representatives: up to `representatives` windows
// nearest each centroid. No windows: no episodes.
Episodes kmeans_episodes(const Matrix& x, size_t episodes, const KMeansOptions& options = {},
                         size_t representatives = 8);

// Episodes from a given assignment (values in [0, episodes)): centroid = the
// normalised mean of its windows.
Episodes episodes_from_assignment(const Matrix& x, std::vector<int32_t> assignment, size_t episodes,
                                  size_t representatives = 8);

// Per episode, the (up to) `count` member windows with the highest cosine to
// its centroid, returned in chronological (index) order.
std::vector<std::vector<size_t>> nearest_representatives(const Matrix& x, const Episodes& episodes, size_t count);

// Mean silhouette coefficient with cosine distance (1 - dot of unit rows);
// 0 when there are fewer than 2 or more than n-1 non-empty clusters. A point
// alone in its cluster scores 0 (scikit-learn's convention).
float silhouette_cosine(const Matrix& x, std::span<const int32_t> assignment);

struct Route {
  int32_t episode = -1;  // -1 when there are no episodes
  float cosine = 0.0f;   // between the (unit) query and the episode's centroid
};

// Nearest centroid by inner product over unit rows (cosine), through a
// faiss::IndexFlatIP. A zero query has cosine 0 to every centroid.
class Router {
 public:
  explicit Router(const Matrix& centroids);
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  Route route(std::span<const float> query) const;
  std::vector<Route> route_all(const Matrix& queries) const;
  size_t size() const;

 private:
  std::unique_ptr<faiss::IndexFlatIP> index_;
};

}  // namespace mnemo::memory::episodes
