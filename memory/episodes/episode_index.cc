#include "memory/episodes/episode_index.h"

#include "memory/episodes/log.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mnemo::memory::episodes {
namespace {

// Episode labels of `next` renamed so each keeps the label of the previous
// episode it shares most windows with (greedy on the overlap counts), so that
// an unchanged episode keeps its id and its cache.
void keep_labels(const std::vector<int32_t>& previous, size_t previous_count, Episodes& next) {
  const size_t k = next.count();
  if (previous_count == 0 || k == 0) return;
  std::vector<std::vector<size_t>> overlap(previous_count, std::vector<size_t>(k, 0));
  for (size_t i = 0; i < previous.size() && i < next.assignment.size(); ++i)
    if (previous[i] >= 0) ++overlap[previous[i]][next.assignment[i]];
  std::vector<int32_t> label(k, -1);  // new episode -> its label
  std::vector<bool> used(std::max(previous_count, k), false);
  for (;;) {
    size_t best = 0, bo = 0, bn = 0;
    for (size_t o = 0; o < previous_count; ++o)
      for (size_t n = 0; n < k; ++n)
        if (!used[o] && label[n] < 0 && o < k && overlap[o][n] > best) best = overlap[o][n], bo = o, bn = n;
    if (best == 0) break;
    label[bn] = static_cast<int32_t>(bo);
    used[bo] = true;
  }
  size_t free_label = 0;
  for (size_t n = 0; n < k; ++n) {
    if (label[n] >= 0) continue;
    while (used[free_label]) ++free_label;
    label[n] = static_cast<int32_t>(free_label);
    used[free_label] = true;
  }
  Episodes out;
  out.centroids = Matrix(k, next.centroids.dim);
  out.representatives.resize(k);
  for (size_t n = 0; n < k; ++n) {
    std::copy(next.centroids.row(n).begin(), next.centroids.row(n).end(), out.centroids.row(label[n]).begin());
    out.representatives[label[n]] = std::move(next.representatives[n]);
  }
  out.assignment = next.assignment;
  for (auto& a : out.assignment) a = label[a];
  next = std::move(out);
}

}  // namespace

const char* method_name(EpisodeMethod m) { return m == EpisodeMethod::KMeans ? "kmeans" : "time-chunks"; }

EpisodeMethod method_from_name(const std::string& name) {
  if (name == "kmeans") return EpisodeMethod::KMeans;
  if (name == "time-chunks") return EpisodeMethod::TimeChunks;
  throw std::invalid_argument("unknown episode method '" + name + "' (kmeans, time-chunks)");
}

const char* route_by_name(RouteBy r) { return r == RouteBy::Centroid ? "centroid" : "nearest-window"; }

RouteBy route_by_from_name(const std::string& name) {
  if (name == "centroid") return RouteBy::Centroid;
  if (name == "nearest-window") return RouteBy::NearestWindow;
  throw std::invalid_argument("unknown episode routing '" + name + "' (centroid, nearest-window)");
}

EpisodeIndex::EpisodeIndex(std::shared_ptr<Embedder> embedder, EpisodeIndexOptions options)
    : embedder_(std::move(embedder)), options_(std::move(options)) {
  if (!embedder_) throw std::invalid_argument("EpisodeIndex: no embedder");
  if (options_.episodes == 0) throw std::invalid_argument("EpisodeIndex: episodes must be at least 1");
}

void EpisodeIndex::build(std::vector<Segment> windows) {
  windows_ = std::move(windows);
  pending_.clear();
  utterances_ = windows_.empty() ? 0 : windows_.back().end_utterance;
  fitted_ = false;
  embeddings_.reset();
  episodes_ = {};
  episodes_.assignment.assign(windows_.size(), -1);
  clustered_windows_ = 0;
  low_confidence_ = 0;
  last_route_.reset();
  recluster();
}

void EpisodeIndex::build(std::span<const Utterance> utterances) {
  build(segment_windows(utterances, options_.segmenter));
  utterances_ = utterances.size();
}

std::vector<size_t> EpisodeIndex::add_utterances(std::span<const Utterance> utterances) {
  auto units = units_of(utterances, options_.segmenter, utterances_);
  utterances_ += utterances.size();
  pending_.insert(pending_.end(), std::make_move_iterator(units.begin()), std::make_move_iterator(units.end()));
  std::vector<size_t> added;
  const size_t w = options_.segmenter.window;
  size_t b = 0;
  for (; pending_.size() - b >= w; b += w) {
    add_window(window_of(std::span(pending_).subspan(b, w)));
    added.push_back(windows_.size() - 1);
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(b));
  return added;
}

std::optional<size_t> EpisodeIndex::flush() {
  if (pending_.empty()) return std::nullopt;
  add_window(window_of(pending_));
  pending_.clear();
  return windows_.size() - 1;
}

int32_t EpisodeIndex::add_window(Segment window) {
  int32_t episode = -1;
  if (fitted_) {
    auto v = embedder_->embed(window);
    if (episodes_.count() > 0) episode = Router(episodes_.centroids).route(v).episode;
    if (embeddings_) embeddings_->append(v);
  }
  utterances_ = std::max(utterances_, window.end_utterance);
  windows_.push_back(std::move(window));
  episodes_.assignment.push_back(episode);
  return episode;
}

Route EpisodeIndex::peek_route(const Segment& question) const {
  if (!fitted_ || episodes_.count() == 0) return {};
  const auto q = embedder_->embed(question);
  if (options_.route_by == RouteBy::Centroid) return Router(episodes_.centroids).route(q);
  // Windows added since the last clustering carry their nearest centroid's episode.
  const Matrix& x = window_embeddings();
  Route best{episodes_.assignment.empty() ? -1 : episodes_.assignment[0], -2.0f};
  for (size_t w = 0; w < x.rows; ++w) {
    const float c = dot(q, x.row(w));
    if (c > best.cosine && episodes_.assignment[w] >= 0) best = {episodes_.assignment[w], c};
  }
  if (best.cosine < -1.5f) return {};
  return best;
}

Route EpisodeIndex::route(const Segment& question) {
  const Route r = peek_route(question);
  if (r.episode >= 0 && r.cosine < options_.min_route_cosine) {
    ++low_confidence_;
    logger()->debug("episodes: low-confidence route to episode {} (cosine {:.3f} < {:.3f}), {} since the last clustering",
                    r.episode, r.cosine, options_.min_route_cosine, low_confidence_);
  }
  last_route_ = r;
  return r;
}

std::string EpisodeIndex::recluster_reason() const {
  if (windows_.empty()) return "";
  if (episodes_.count() == 0) return "unclustered";
  const size_t need = std::max<size_t>(
      options_.min_new_windows, static_cast<size_t>(std::ceil(options_.recluster_growth * double(clustered_windows_))));
  if (new_windows() >= need) return "growth";
  if (options_.low_confidence_routes > 0 && low_confidence_ >= options_.low_confidence_routes && new_windows() > 0)
    return "low-confidence";
  return "";
}

const Matrix& EpisodeIndex::embeddings() {
  if (!embeddings_ && !fitted_) {
    embeddings_ = embedder_->fit(windows_);
    fitted_ = true;
  }
  return window_embeddings();
}

const Matrix& EpisodeIndex::window_embeddings() const {
  if (!embeddings_) {
    if (!fitted_) throw std::logic_error("EpisodeIndex: window embeddings before any fit");
    Matrix m;
    for (const auto& w : windows_) m.append(embedder_->embed(w));
    if (windows_.empty()) m.dim = embedder_->dim();
    embeddings_ = std::move(m);
  }
  return *embeddings_;
}

ReclusterResult EpisodeIndex::recluster() {
  const std::string reason = recluster_reason();
  if (options_.refit_embedder || !fitted_) {
    embeddings_ = embedder_->fit(windows_);
    fitted_ = true;
  }
  const Matrix& x = embeddings();
  Episodes next;
  if (options_.method == EpisodeMethod::KMeans) {
    next = kmeans_episodes(x, options_.episodes, options_.kmeans, options_.representatives);
  } else {
    const size_t k = std::min(options_.episodes, x.rows);
    if (k > 0)
      next = episodes_from_assignment(x, time_chunk_assignment(x.rows, k), k, options_.representatives);
  }
  const size_t previous_count = episodes_.count();
  keep_labels(episodes_.assignment, previous_count, next);

  ReclusterResult result;
  result.episodes = next.count();
  result.changed.assign(next.count(), true);
  result.overlap.assign(next.count(), 0.0);
  result.centroid_cosine.assign(next.count(), -1.0f);
  for (size_t e = 0; e < next.count() && e < previous_count; ++e) {
    const auto& now = next.representatives[e];
    const auto& was = episodes_.representatives[e];
    size_t shared = 0;
    for (size_t w : now) shared += std::find(was.begin(), was.end(), w) != was.end();
    result.overlap[e] = now.empty() ? (was.empty() ? 1.0 : 0.0) : double(shared) / double(now.size());
    if (next.centroids.dim == episodes_.centroids.dim && next.centroids.dim > 0) {
      double dot = 0, a = 0, b = 0;
      const auto x = next.centroids.row(e), y = episodes_.centroids.row(e);
      for (size_t i = 0; i < x.size(); ++i) dot += double(x[i]) * y[i], a += double(x[i]) * x[i], b += double(y[i]) * y[i];
      result.centroid_cosine[e] = a > 0 && b > 0 ? float(dot / std::sqrt(a * b)) : -1.0f;
    }
    result.changed[e] = now != was && result.overlap[e] < options_.keep_overlap &&
                        result.centroid_cosine[e] < options_.keep_cosine;
  }
  episodes_ = std::move(next);

  // Silhouette on evenly spaced windows when there are many (bounded work).
  const size_t n = x.rows, m = std::min(n, std::max<size_t>(options_.silhouette_sample, 3));
  if (m == n) {
    silhouette_ = silhouette_cosine(x, episodes_.assignment);
  } else {
    Matrix sample;
    std::vector<int32_t> labels;
    for (size_t i = 0; i < m; ++i) {
      const size_t w = i * n / m;
      sample.append(x.row(w));
      labels.push_back(episodes_.assignment[w]);
    }
    silhouette_ = silhouette_cosine(sample, labels);
  }
  result.silhouette = silhouette_;
  const auto changed = std::count(result.changed.begin(), result.changed.end(), true);
  logger()->info("episodes: {} windows ({} new, {} low-confidence routes; reason '{}') -> {} episodes by {} with {}, "
                 "silhouette {:.3f}, {} of them changed (their caches need a rebuild)",
                 windows_.size(), new_windows(), low_confidence_, reason.empty() ? "requested" : reason,
                 episodes_.count(), method_name(options_.method), embedder_->name(), silhouette_, changed);
  clustered_windows_ = windows_.size();
  low_confidence_ = 0;
  return result;
}

std::vector<const Segment*> EpisodeIndex::representative_windows(int32_t episode) const {
  std::vector<const Segment*> out;
  if (episode < 0 || static_cast<size_t>(episode) >= episodes_.count()) return out;
  for (size_t w : episodes_.representatives[episode]) out.push_back(&windows_[w]);
  return out;
}

}  // namespace mnemo::memory::episodes
