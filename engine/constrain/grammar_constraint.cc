#include "engine/constrain/grammar_constraint.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace mnemo::engine {

GrammarConstraint::GrammarConstraint(std::shared_ptr<const TokenTrie> vocab, std::vector<ConstraintPart> parts,
                                     std::vector<int32_t> end_tokens)
    : vocab_(std::move(vocab)), parts_(std::move(parts)), end_tokens_(std::move(end_tokens)) {
  if (!vocab_) throw std::invalid_argument("grammar constraint: no vocabulary");
  if (parts_.empty()) throw std::invalid_argument("grammar constraint: no parts");
  auto check_id = [&](int32_t id, const char* what) {
    if (id < 0 || id >= vocab_->vocab_size())
      throw std::invalid_argument(std::string("grammar constraint: ") + what + " id " + std::to_string(id) + " is outside the vocabulary");
  };
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (parts_[i].token) check_id(*parts_[i].token, "token");
    else if (!parts_[i].grammar) throw std::invalid_argument("grammar constraint: part " + std::to_string(i) + " has neither token nor grammar");
    else if (i > 0 && !parts_[i - 1].token) throw std::invalid_argument("grammar constraint: two grammar parts in a row");
  }
  for (const int32_t id : end_tokens_) check_id(id, "end token");
  enter(0);
}

void GrammarConstraint::enter(size_t part) {
  part_ = part;
  if (part_ < parts_.size() && !parts_[part_].token) state_.emplace(*parts_[part_].grammar);
  else state_.reset();
}

std::optional<int32_t> GrammarConstraint::token_after_grammar() const {
  if (!state_ || part_ + 1 >= parts_.size() || !state_->complete()) return std::nullopt;
  return parts_[part_ + 1].token;
}

void GrammarConstraint::mark_grammar_tokens(std::vector<uint8_t>& allowed) const {
  const TokenTrie::Trie* trie = &vocab_->all();
  uint32_t chars_left = 0;
  bool after_lt = false;
  if (state_->in_plain_string(chars_left, after_lt)) {
    // Most of a vocabulary is plain text, which a string takes as long as
    // it fits: no need to walk it.
    for (const auto& p : vocab_->plain()) {
      if (p.chars > chars_left) break;
      if (!(after_lt && p.slash_first)) allowed[static_cast<size_t>(p.id)] = 1;
    }
    trie = &vocab_->non_plain();
  }
  thread_local std::vector<Recognizer> walk;  // the state after each depth of the current path
  if (walk.size() < static_cast<size_t>(trie->max_depth) + 1) walk.assign(static_cast<size_t>(trie->max_depth) + 1, *state_);
  walk[0].assign(*state_);
  const auto& nodes = trie->nodes;
  for (size_t i = 1; i < nodes.size();) {
    const TokenTrie::Node& n = nodes[i];
    Recognizer& r = walk[n.depth];
    r.assign(walk[n.depth - 1u]);
    if (!r.feed(n.byte)) {
      i = n.end;  // no token with this prefix can come next
      continue;
    }
    for (uint32_t k = n.tokens_begin; k < n.tokens_end; ++k) allowed[static_cast<size_t>(trie->ids[k])] = 1;
    ++i;
  }
}

void GrammarConstraint::mask(std::span<float> logits) const {
  if (done()) return;
  thread_local std::vector<uint8_t> allowed;
  allowed.assign(static_cast<size_t>(vocab_->vocab_size()), 0);
  const ConstraintPart& p = parts_[part_];
  if (p.token) {
    allowed[static_cast<size_t>(*p.token)] = 1;
  } else {
    mark_grammar_tokens(allowed);
    if (auto t = token_after_grammar()) allowed[static_cast<size_t>(*t)] = 1;
    if (part_ + 1 == parts_.size() && state_->complete())
      for (const int32_t id : end_tokens_) allowed[static_cast<size_t>(id)] = 1;
  }
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i)
    if (i >= allowed.size() || !allowed[i]) logits[i] = kNegInf;
}

bool GrammarConstraint::allowed(int32_t token) const {
  if (token < 0 || token >= vocab_->vocab_size()) return false;
  std::vector<float> logits(static_cast<size_t>(vocab_->vocab_size()), 0.0f);
  mask(logits);
  return !done() && logits[static_cast<size_t>(token)] == 0.0f;
}

void GrammarConstraint::accept(int32_t token) {
  auto refuse = [&](const std::string& why) {
    throw std::invalid_argument("grammar constraint: token " + std::to_string(token) + " " + why);
  };
  if (done()) refuse("came after the constrained text was complete");
  const ConstraintPart& p = parts_[part_];
  if (p.token) {
    if (token != *p.token) refuse("is not the required token " + std::to_string(*p.token));
    enter(part_ + 1);
    return;
  }
  if (auto t = token_after_grammar(); t && token == *t) {
    enter(part_ + 2);
    return;
  }
  if (part_ + 1 == parts_.size() && state_->complete() &&
      std::find(end_tokens_.begin(), end_tokens_.end(), token) != end_tokens_.end()) {
    enter(parts_.size());
    return;
  }
  if (!vocab_->in_trie(token)) refuse("is not allowed here");
  Recognizer next(*state_);
  if (!next.feed(vocab_->bytes(token))) refuse("does not fit the grammar here");
  *state_ = next;
  if (state_->complete() && !state_->can_continue()) enter(part_ + 1);
}

std::unique_ptr<GrammarConstraint> make_json_schema_constraint(std::shared_ptr<const TokenTrie> vocab,
                                                               const nlohmann::ordered_json& schema,
                                                               std::vector<int32_t> end_tokens, GrammarLimits limits) {
  auto grammar = std::make_shared<Grammar>(limits);
  grammar->set_root(grammar->add_schema(schema));
  std::vector<ConstraintPart> parts = {{std::nullopt, std::move(grammar)}};
  return std::make_unique<GrammarConstraint>(std::move(vocab), std::move(parts), std::move(end_tokens));
}

}  // namespace mnemo::engine
