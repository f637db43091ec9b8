#pragma once
// Window -> unit vector. An embedder is fitted on one conversation's windows
// (TF-IDF learns its vocabulary there; hidden states learn the mean they
// subtract) and then embeds later windows and questions in the same space.
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "memory/episodes/segment.h"
#include "memory/episodes/vectors.h"

namespace mnemo::memory::episodes {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual std::string name() const = 0;
  // Fits on the conversation's windows and returns their embeddings, unit rows.
  virtual Matrix fit(std::span<const Segment> windows) = 0;
  // A later window or a question, in the fitted space: unit norm, or all
  // zeros when nothing in it is known (a question of unseen words).
  virtual std::vector<float> embed(const Segment& piece) const = 0;
  virtual size_t dim() const = 0;
  // What must be persisted to embed the same way after a restart; restore()
  // gets it back with the windows the index holds (fit() saw a prefix of them).
  virtual nlohmann::json state() const = 0;
  virtual void restore(const nlohmann::json& state, std::span<const Segment> windows) = 0;
};

}  // namespace mnemo::memory::episodes
