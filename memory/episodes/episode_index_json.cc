// EpisodeIndex <-> JSON, so the daemon can persist a session's episodes
// (SQLite) and resume routing after a restart without re-clustering.
#include <stdexcept>

#include "memory/episodes/episode_index.h"

namespace mnemo::memory::episodes {
namespace {

constexpr int kVersion = 1;

nlohmann::json options_json(const EpisodeIndexOptions& o) {
  return {{"episodes", o.episodes},
          {"method", method_name(o.method)},
          {"route_by", route_by_name(o.route_by)},
          {"seed", o.kmeans.seed},
          {"niter", o.kmeans.niter},
          {"nredo", o.kmeans.nredo},
          {"max_points_per_episode", o.kmeans.max_points_per_episode},
          {"representatives", o.representatives},
          {"window", o.segmenter.window},
          {"long_message_chars", o.segmenter.long_message_chars},
          {"recluster_growth", o.recluster_growth},
          {"min_new_windows", o.min_new_windows},
          {"min_route_cosine", o.min_route_cosine},
          {"low_confidence_routes", o.low_confidence_routes},
          {"refit_embedder", o.refit_embedder},
          {"silhouette_sample", o.silhouette_sample}};
}

EpisodeIndexOptions options_from(const nlohmann::json& j) {
  EpisodeIndexOptions o;
  o.episodes = j.at("episodes").get<size_t>();
  o.method = method_from_name(j.at("method").get<std::string>());
  o.route_by = route_by_from_name(j.at("route_by").get<std::string>());
  o.kmeans.seed = j.at("seed").get<int>();
  o.kmeans.niter = j.at("niter").get<int>();
  o.kmeans.nredo = j.at("nredo").get<int>();
  o.kmeans.max_points_per_episode = j.at("max_points_per_episode").get<int>();
  o.representatives = j.at("representatives").get<size_t>();
  o.segmenter.window = j.at("window").get<size_t>();
  o.segmenter.long_message_chars = j.at("long_message_chars").get<size_t>();
  o.recluster_growth = j.at("recluster_growth").get<double>();
  o.min_new_windows = j.at("min_new_windows").get<size_t>();
  o.min_route_cosine = j.at("min_route_cosine").get<float>();
  o.low_confidence_routes = j.at("low_confidence_routes").get<size_t>();
  o.refit_embedder = j.at("refit_embedder").get<bool>();
  o.silhouette_sample = j.at("silhouette_sample").get<size_t>();
  return o;
}

}  // namespace

nlohmann::json EpisodeIndex::to_json() const {
  nlohmann::json windows = nlohmann::json::array();
  for (const auto& w : windows_)
    windows.push_back({{"first", w.first_utterance}, {"end", w.end_utterance}, {"text", w.text}, {"tokens", w.tokens}});
  nlohmann::json pending = nlohmann::json::array();
  for (const auto& u : pending_) pending.push_back({{"utterance", u.utterance}, {"line", u.line}});
  nlohmann::json centroids = nlohmann::json::array();
  for (size_t c = 0; c < episodes_.count(); ++c) {
    const auto row = episodes_.centroids.row(c);
    centroids.push_back(std::vector<float>(row.begin(), row.end()));
  }
  return {{"version", kVersion},
          {"options", options_json(options_)},
          {"embedder", {{"name", embedder_->name()}, {"fitted", fitted_}, {"state", fitted_ ? embedder_->state() : nlohmann::json()}}},
          {"utterances", utterances_},
          {"windows", std::move(windows)},
          {"pending", std::move(pending)},
          {"episodes",
           {{"dim", episodes_.centroids.dim},
            {"centroids", std::move(centroids)},
            {"assignment", episodes_.assignment},
            {"representatives", episodes_.representatives}}},
          {"silhouette", silhouette_},
          {"clustered_windows", clustered_windows_},
          {"low_confidence_routes", low_confidence_}};
}

EpisodeIndex EpisodeIndex::from_json(const nlohmann::json& j, std::shared_ptr<Embedder> embedder) {
  if (j.at("version").get<int>() != kVersion)
    throw std::invalid_argument("episode index: unsupported version " + j.at("version").dump());
  EpisodeIndex idx(std::move(embedder), options_from(j.at("options")));
  const auto& ej = j.at("embedder");
  if (ej.at("name").get<std::string>() != idx.embedder_->name())
    throw std::invalid_argument("episode index: written with embedder '" + ej.at("name").get<std::string>() +
                                "', restored with '" + idx.embedder_->name() + "'");
  idx.utterances_ = j.at("utterances").get<size_t>();
  for (const auto& w : j.at("windows"))
    idx.windows_.push_back(Segment{w.at("first").get<size_t>(), w.at("end").get<size_t>(),
                                   w.at("text").get<std::string>(), w.at("tokens").get<std::vector<int32_t>>()});
  for (const auto& u : j.at("pending"))
    idx.pending_.push_back(Unit{u.at("utterance").get<size_t>(), u.at("line").get<std::string>()});
  idx.fitted_ = ej.at("fitted").get<bool>();
  if (idx.fitted_) idx.embedder_->restore(ej.at("state"), idx.windows_);

  const auto& e = j.at("episodes");
  const auto centroids = e.at("centroids").get<std::vector<std::vector<float>>>();
  idx.episodes_.centroids = Matrix(0, e.at("dim").get<size_t>());
  for (const auto& c : centroids) idx.episodes_.centroids.append(c);
  idx.episodes_.assignment = e.at("assignment").get<std::vector<int32_t>>();
  idx.episodes_.representatives = e.at("representatives").get<std::vector<std::vector<size_t>>>();
  if (idx.episodes_.assignment.size() != idx.windows_.size() ||
      idx.episodes_.representatives.size() != idx.episodes_.count())
    throw std::invalid_argument("episode index: assignment or representatives do not match windows and centroids");
  if (idx.fitted_ && idx.episodes_.count() > 0 && idx.episodes_.centroids.dim != idx.embedder_->dim())
    throw std::invalid_argument("episode index: centroid dimension differs from the restored embedder's");
  idx.silhouette_ = j.at("silhouette").get<float>();
  idx.clustered_windows_ = j.at("clustered_windows").get<size_t>();
  idx.low_confidence_ = j.at("low_confidence_routes").get<size_t>();
  return idx;
}

}  // namespace mnemo::memory::episodes
