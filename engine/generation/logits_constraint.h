#pragma once
// Constrained decoding: what may be sampled next. The engine masks each row
// of logits before sampling, then reports the sampled token; once done() the
// constrained text is complete and the request finishes.
#include <cstdint>
#include <span>

namespace mnemo::engine {

class LogitsConstraint {
 public:
  virtual ~LogitsConstraint() = default;
  // Sets the logits of every token that may not come next to -infinity.
  // At least one token stays allowed while !done().
  virtual void mask(std::span<float> logits) const = 0;
  // The token that was sampled (always one that mask() allowed).
  virtual void accept(int32_t token) = 0;
  virtual bool done() const = 0;
};

}  // namespace mnemo::engine
