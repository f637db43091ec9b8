// Either of several constraints, decided by the tokens themselves: a token
// is allowed when some still-live alternative allows it, and each token
// drops the alternatives that would not have taken it. What a response
// format with tools under tool_choice "auto" needs: the model may start a
// tool call or answer in the format, and its first tokens say which.
//
// While several alternatives live, mask() costs one mask per alternative;
// alternatives that start differently (a <tool_call> token against "{")
// part after the first token.
#pragma once

#include <memory>
#include <vector>

#include "engine/generation/logits_constraint.h"

namespace mnemo::engine {

class FirstOfConstraint : public LogitsConstraint {
 public:
  // Throws std::invalid_argument for an empty list or a null alternative.
  explicit FirstOfConstraint(std::vector<std::unique_ptr<LogitsConstraint>> alternatives);

  void mask(std::span<float> logits) const override;
  // Throws std::invalid_argument when no live alternative takes the token.
  void accept(int32_t token) override;
  // An alternative is complete (the text is whole under it).
  bool done() const override;

  // Alternatives still possible, in the order given (for tests).
  size_t live() const { return live_.size(); }
  // The index, in the constructor's list, of the first live alternative.
  size_t first_live() const { return live_.front().index; }

 private:
  struct Alt {
    size_t index;
    std::unique_ptr<LogitsConstraint> c;
  };
  std::vector<Alt> live_;
};

}  // namespace mnemo::engine
