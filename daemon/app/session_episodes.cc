#include "daemon/app/session_episodes.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "memory/episodes/segment.h"

namespace mnemo::daemon::app {

namespace ep = memory::episodes;

namespace {

// FNV-1a, 64 bits: stable across builds, so a persisted hash still matches.
uint64_t fnv(uint64_t h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return (h ^ 0xff) * 1099511628211ull;  // a separator: ("ab","c") differs from ("a","bc")
}

constexpr uint64_t kFnvBasis = 14695981039346656037ull;

uint64_t hash_of(std::span<const ep::Utterance> u) {
  uint64_t h = kFnvBasis;
  for (const auto& x : u) h = fnv(fnv(h, x.speaker), x.text);
  return h;
}

ep::EpisodeIndexOptions index_options(size_t episodes, ep::EpisodeMethod method) {
  ep::EpisodeIndexOptions o;
  o.episodes = episodes;
  o.method = method;
  // Bounded work per turn: fewer k-means restarts than the offline default.
  o.kmeans.nredo = 3;
  return o;
}

bool is_history_role(const std::string& role) { return role == "user" || role == "assistant"; }

}  // namespace

std::vector<ep::Utterance> history_utterances(std::span<const engine::ChatMessage> messages) {
  size_t end = messages.size();
  for (size_t i = messages.size(); i-- > 0;)
    if (messages[i].role == "user") {
      end = i;
      break;
    }
  std::vector<ep::Utterance> out;
  for (size_t i = 0; i < end; ++i)
    if (is_history_role(messages[i].role) && !messages[i].content.empty())
      out.push_back({messages[i].role, messages[i].content});
  return out;
}

std::optional<std::string> question_text(std::span<const engine::ChatMessage> messages) {
  for (size_t i = messages.size(); i-- > 0;)
    if (messages[i].role == "user") return messages[i].content;
  return std::nullopt;
}

SessionEpisodes::SessionEpisodes(std::string embedder, size_t episodes, MakeEmbedder make, ep::EpisodeMethod method)
    : embedder_(std::move(embedder)), episodes_(episodes), method_(method), make_(std::move(make)) {
  index_ = std::make_unique<ep::EpisodeIndex>(make_(embedder_), index_options(episodes_, method_));
}

SessionEpisodes SessionEpisodes::restore(const nlohmann::json& state, MakeEmbedder make) {
  SessionEpisodes s(state.at("embedder").get<std::string>(), state.at("episodes").get<size_t>(), make);
  s.index_ = std::make_unique<ep::EpisodeIndex>(ep::EpisodeIndex::from_json(state.at("index"), make(s.embedder_)));
  // The stored index carries its method (older states: k-means); a reset keeps it.
  s.method_ = s.index_->options().method;
  s.fed_ = state.at("fed").get<size_t>();
  s.fed_hash_ = state.at("fed_hash").get<uint64_t>();
  return s;
}

nlohmann::json SessionEpisodes::state() const {
  return {{"embedder", embedder_},
          {"episodes", episodes_},
          {"fed", fed_},
          {"fed_hash", fed_hash_},
          {"index", index_->to_json()}};
}

void SessionEpisodes::reset() {
  index_ = std::make_unique<ep::EpisodeIndex>(make_(embedder_), index_options(episodes_, method_));
  fed_ = 0;
  fed_hash_ = kFnvBasis;
}

SessionEpisodes::Sync SessionEpisodes::sync(std::span<const ep::Utterance> history) {
  Sync out;
  if (fed_ == 0) fed_hash_ = kFnvBasis;
  if (history.size() < fed_ || hash_of(history.first(fed_)) != fed_hash_) {
    reset();
    out.reset = true;
  }
  auto feed = [&] {
    const auto fresh = history.subspan(fed_);
    index_->add_utterances(fresh);
    for (const auto& u : fresh) fed_hash_ = fnv(fnv(fed_hash_, u.speaker), u.text);
    out.added += fresh.size();
    fed_ = history.size();
    // Too short a history for one whole window: its tail is the first window.
    if (index_->windows().empty()) index_->flush();
    if (index_->needs_recluster()) {
      out.reason = index_->recluster_reason();
      out.result = index_->recluster();
    }
  };
  try {
    feed();
  } catch (const std::exception& ex) {
    if (embedder_ == "tfidf") throw;
    spdlog::warn("session memory: the {} embedder failed ({}); episodes from TF-IDF instead", embedder_, ex.what());
    embedder_ = "tfidf";
    reset();
    out = Sync{};
    out.reset = out.fell_back = true;
    feed();
  }
  return out;
}

ep::Route SessionEpisodes::route(const std::string& question) {
  try {
    return index_->route(ep::Segment::of_text(question));
  } catch (const std::exception& ex) {
    spdlog::warn("session memory: a question not routed ({}); episode 0", ex.what());
    return {episodes() > 0 ? 0 : -1, 0.0f};
  }
}

std::vector<std::string> SessionEpisodes::representative_texts(int32_t episode) const {
  std::vector<std::string> out;
  for (const ep::Segment* w : index_->representative_windows(episode)) out.push_back(w->text);
  return out;
}

}  // namespace mnemo::daemon::app
