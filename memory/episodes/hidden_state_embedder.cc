#include "memory/episodes/hidden_state_embedder.h"

#include <stdexcept>

namespace mnemo::memory::episodes {

namespace {

std::string cache_key(const Segment& piece) {
  if (piece.tokens.empty()) return "t" + piece.text;
  std::string key = "k";
  key.append(reinterpret_cast<const char*>(piece.tokens.data()), piece.tokens.size() * sizeof(int32_t));
  return key;
}

}  // namespace

std::vector<float> HiddenStateEmbedder::raw(const Segment& piece) const {
  const std::string key = cache_key(piece);
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  std::vector<float> v;
  if (!piece.tokens.empty()) {
    v = hidden_(piece.tokens);
  } else {
    if (!tokenize_) throw std::invalid_argument("HiddenStateEmbedder: a text piece needs a tokenizer");
    const auto tokens = tokenize_(piece.text);
    if (tokens.empty()) return std::vector<float>(dim_, 0.0f);
    v = hidden_(tokens);
  }
  std::lock_guard lock(cache_mutex_);
  ++forward_calls_;
  cache_.emplace(key, v);
  return v;
}

Matrix HiddenStateEmbedder::fit(std::span<const Segment> windows) {
  Matrix m;
  std::unordered_map<std::string, std::vector<float>> kept;
  for (const auto& w : windows) {
    m.append(raw(w));
    kept.emplace(cache_key(w), std::vector<float>(m.row(m.rows - 1).begin(), m.row(m.rows - 1).end()));
  }
  {
    std::lock_guard lock(cache_mutex_);
    cache_ = std::move(kept);
  }
  dim_ = m.dim;
  mean_.clear();
  if (center_ && m.rows > 1) {  // one window: centring would leave nothing
    mean_.assign(dim_, 0.0f);
    for (size_t r = 0; r < m.rows; ++r)
      for (size_t i = 0; i < dim_; ++i) mean_[i] += m.row(r)[i] / static_cast<float>(m.rows);
  }
  for (size_t r = 0; r < m.rows; ++r) {
    auto row = m.row(r);
    for (size_t i = 0; i < mean_.size(); ++i) row[i] -= mean_[i];
    normalize(row);
  }
  return m;
}

std::vector<float> HiddenStateEmbedder::embed(const Segment& piece) const {
  std::vector<float> v = raw(piece);
  if (dim_ != 0 && v.size() != dim_) throw std::runtime_error("HiddenStateEmbedder: hidden size changed");
  for (size_t i = 0; i < mean_.size(); ++i) v[i] -= mean_[i];
  normalize(v);
  return v;
}

nlohmann::json HiddenStateEmbedder::state() const {
  return {{"center", center_}, {"dim", dim_}, {"mean", mean_}};
}

void HiddenStateEmbedder::restore(const nlohmann::json& state, std::span<const Segment>) {
  // The mean is stored: recomputing it would cost a forward pass over the history.
  center_ = state.at("center").get<bool>();
  dim_ = state.at("dim").get<size_t>();
  mean_ = state.at("mean").get<std::vector<float>>();
}

}  // namespace mnemo::memory::episodes
