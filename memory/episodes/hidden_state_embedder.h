#pragma once
// The served model's own embedding of a window: mean-pooled hidden states at
// one layer (engine::mean_hidden_state), optionally centred on the mean of
// the conversation's windows before normalising. Raw residual streams share a
// large common direction (all cosines near 1); subtracting the conversation
// mean leaves what distinguishes its windows.
//
// A forward pass per window is the expensive part, so raw vectors are cached
// by content: a re-fit after the conversation grew (re-clustering) runs the
// model only on windows it has not seen, not over the whole history again.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "memory/episodes/embedder.h"

namespace mnemo::engine {
class Model;
}

namespace mnemo::memory::episodes {

using HiddenStateFn = std::function<std::vector<float>(std::span<const int32_t> tokens)>;
using TokenizeFn = std::function<std::vector<int32_t>(std::string_view text)>;

class HiddenStateEmbedder final : public Embedder {
 public:
  // `tokenize` may be empty for token conversations (pieces carry tokens).
  HiddenStateEmbedder(HiddenStateFn hidden, TokenizeFn tokenize, bool center = true)
      : hidden_(std::move(hidden)), tokenize_(std::move(tokenize)), center_(center) {}

  std::string name() const override { return "hidden-state"; }
  // Forward passes run so far (each distinct piece once between fits).
  size_t forward_calls() const { return forward_calls_; }
  Matrix fit(std::span<const Segment> windows) override;
  std::vector<float> embed(const Segment& piece) const override;
  size_t dim() const override { return dim_; }
  nlohmann::json state() const override;
  void restore(const nlohmann::json& state, std::span<const Segment> windows) override;

 private:
  std::vector<float> raw(const Segment& piece) const;  // before centring and normalising

  HiddenStateFn hidden_;
  TokenizeFn tokenize_;
  bool center_;
  size_t dim_ = 0;
  std::vector<float> mean_;  // [dim]; empty when not centring
  // Raw vectors by piece content: the windows of the last fit plus pieces
  // embedded since (dropped at the next fit, so questions do not pile up).
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<float>> cache_;
  mutable size_t forward_calls_ = 0;
};

// engine::mean_hidden_state(model, tokens, layer) as a HiddenStateFn; the
// model must outlive it.
HiddenStateFn engine_hidden_state(const engine::Model& model, int64_t layer);

}  // namespace mnemo::memory::episodes
