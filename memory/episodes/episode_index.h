#pragma once
// The online episode index of one conversation: windows as the conversation
// grows, their episodes (k-means or time-ordered chunks), representatives,
// routing of questions, and the decision when to re-cluster. It decides and
// holds the data; rebuilding the per-episode caches is the caller's job
// (recluster() says which episodes' representatives changed).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "memory/episodes/clustering.h"
#include "memory/episodes/embedder.h"
#include "memory/episodes/segment.h"

namespace mnemo::memory::episodes {

enum class EpisodeMethod { KMeans, TimeChunks };
// How a question finds its episode: the nearest centroid (EpiCache), or the
// episode of the single most similar window (measured better with TF-IDF on
// LoCoMo: 55% against 49% at E = 4; bench/episode_routing_bench.cc).
enum class RouteBy { Centroid, NearestWindow };

struct EpisodeIndexOptions {
  size_t episodes = 4;
  EpisodeMethod method = EpisodeMethod::KMeans;
  RouteBy route_by = RouteBy::Centroid;
  KMeansOptions kmeans;
  size_t representatives = 8;      // windows per episode representative
  SegmenterOptions segmenter;      // for add_utterances / build from utterances
  // Re-cluster once the windows added since the last clustering reach this
  // share of the windows clustered then (and at least min_new_windows).
  double recluster_growth = 0.25;
  size_t min_new_windows = 1;
  // A routed question whose best cosine is below this is low-confidence;
  // this many of them since the last clustering ask for a re-cluster, provided
  // windows were added since (re-clustering the same windows changes nothing).
  float min_route_cosine = 0.05f;
  size_t low_confidence_routes = 1;
  bool refit_embedder = true;      // recluster() refits (a TF-IDF vocabulary grows with the conversation)
  size_t silhouette_sample = 512;  // bounded work: silhouette over at most this many evenly spaced windows
  // After a re-cluster an episode counts as unchanged (its cache is kept and
  // continued) when at least this share of its new representatives were
  // among its old ones, or when its centroid moved less than keep_cosine
  // (same embedding space only): a cache scored by nearly the same queries is
  // nearly the same cache, and a rebuild costs a prefill of the whole history.
  double keep_overlap = 0.5;
  float keep_cosine = 0.98f;
};

const char* method_name(EpisodeMethod m);
EpisodeMethod method_from_name(const std::string& name);  // throws std::invalid_argument
const char* route_by_name(RouteBy r);
RouteBy route_by_from_name(const std::string& name);  // throws std::invalid_argument

struct ReclusterResult {
  size_t episodes = 0;
  // Per episode (labels kept stable by matching to the previous clustering's
  // windows): whether its representatives differ, i.e. its cache needs a rebuild.
  std::vector<bool> changed;
  // Per episode: the share of its representatives that were representatives
  // before, and its centroid's cosine to the old one (-1: not comparable).
  std::vector<double> overlap;
  std::vector<float> centroid_cosine;
  float silhouette = 0.0f;
};

class EpisodeIndex {
 public:
  EpisodeIndex(std::shared_ptr<Embedder> embedder, EpisodeIndexOptions options = {});

  // Offline start: replaces all windows and clusters them.
  void build(std::vector<Segment> windows);
  void build(std::span<const Utterance> utterances);

  // Online: utterances join a pending tail of units; each full window of
  // options.segmenter.window units is added. Returns the new windows' indices.
  std::vector<size_t> add_utterances(std::span<const Utterance> utterances);
  // Adds the pending tail as a (short) window, if any; returns its index.
  std::optional<size_t> flush();
  // Online: one window, embedded in the current fit and assigned to the
  // nearest centroid; returns its episode (-1 before the first clustering).
  int32_t add_window(Segment window);

  // The question's episode (options.route_by) and the cosine it was chosen
  // by (to the centroid, or to the window); records the confidence
  // (low-confidence routes count towards a re-cluster). peek_route records
  // nothing. A new window always joins its nearest centroid's episode.
  Route route(const Segment& question);
  Route peek_route(const Segment& question) const;

  bool needs_recluster() const { return !recluster_reason().empty(); }
  // "" when none; else "unclustered", "growth" or "low-confidence" (for logs).
  std::string recluster_reason() const;
  ReclusterResult recluster();

  const std::vector<Segment>& windows() const { return windows_; }
  const Episodes& episodes() const { return episodes_; }
  const std::vector<int32_t>& assignment() const { return episodes_.assignment; }
  // Utterance ranges of an episode's representative windows, in time order.
  std::vector<const Segment*> representative_windows(int32_t episode) const;
  float silhouette() const { return silhouette_; }
  size_t clustered_windows() const { return clustered_windows_; }
  size_t new_windows() const { return windows_.size() - clustered_windows_; }
  size_t low_confidence_count() const { return low_confidence_; }
  std::optional<Route> last_route() const { return last_route_; }
  size_t utterances_seen() const { return utterances_; }
  const EpisodeIndexOptions& options() const { return options_; }
  const Embedder& embedder() const { return *embedder_; }
  // Window embeddings in the current fit (recomputed after a restore).
  const Matrix& embeddings();

  // The whole state: options, embedder state, windows, pending units,
  // centroids, assignment, representatives, counters.
  nlohmann::json to_json() const;
  // `embedder` must be of the kind that wrote the state (its name is checked).
  static EpisodeIndex from_json(const nlohmann::json& j, std::shared_ptr<Embedder> embedder);

 private:
  std::shared_ptr<Embedder> embedder_;
  EpisodeIndexOptions options_;
  std::vector<Segment> windows_;
  std::vector<Unit> pending_;
  size_t utterances_ = 0;
  bool fitted_ = false;
  const Matrix& window_embeddings() const;  // re-embeds after a restore; needs a fit
  mutable std::optional<Matrix> embeddings_;  // absent after a restore until needed
  Episodes episodes_;
  float silhouette_ = 0.0f;
  size_t clustered_windows_ = 0;
  size_t low_confidence_ = 0;
  std::optional<Route> last_route_;
};

}  // namespace mnemo::memory::episodes
