#include "engine/constrain/first_of_constraint.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace mnemo::engine {

FirstOfConstraint::FirstOfConstraint(std::vector<std::unique_ptr<LogitsConstraint>> alternatives) {
  if (alternatives.empty()) throw std::invalid_argument("first-of constraint: no alternatives");
  for (size_t i = 0; i < alternatives.size(); ++i) {
    if (!alternatives[i]) throw std::invalid_argument("first-of constraint: alternative " + std::to_string(i) + " is null");
    live_.push_back({i, std::move(alternatives[i])});
  }
}

void FirstOfConstraint::mask(std::span<float> logits) const {
  if (live_.size() == 1) {
    live_.front().c->mask(logits);
    return;
  }
  // A token keeps its logit when any alternative leaves it unmasked.
  thread_local std::vector<float> original, scratch;
  original.assign(logits.begin(), logits.end());
  std::vector<uint8_t> keep(logits.size(), 0);
  for (const Alt& a : live_) {
    if (a.c->done()) continue;
    scratch = original;
    a.c->mask(scratch);
    for (size_t i = 0; i < scratch.size(); ++i)
      if (!(std::isinf(scratch[i]) && scratch[i] < 0)) keep[i] = 1;
  }
  for (size_t i = 0; i < logits.size(); ++i)
    if (!keep[i]) logits[i] = -std::numeric_limits<float>::infinity();
}

void FirstOfConstraint::accept(int32_t token) {
  std::vector<Alt> next;
  for (Alt& a : live_) {
    if (a.c->done()) continue;
    try {
      a.c->accept(token);
    } catch (const std::invalid_argument&) {
      continue;  // this alternative would not have taken it: it is out
    }
    next.push_back(std::move(a));
  }
  if (next.empty()) throw std::invalid_argument("first-of constraint: token " + std::to_string(token) + " fits no alternative");
  live_ = std::move(next);
}

bool FirstOfConstraint::done() const {
  return std::any_of(live_.begin(), live_.end(), [](const Alt& a) { return a.c->done(); });
}

}  // namespace mnemo::engine
