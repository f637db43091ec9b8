// A LogitsConstraint that forces a text made of parts: a given token (a
// special marker such as <tool_call>), or a stretch of bytes matched by a
// Grammar. A token is allowed iff its bytes keep the recogniser alive; at
// a grammar's end the next part's token (or, after the last part, one of
// the end tokens) is allowed too. done() once every part is produced.
//
// One object per request, used from one thread at a time. The scratch
// space of mask() (a recogniser per trie depth, a flag per token) is per
// thread, not per request, so idle constraints stay small.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/constrain/grammar.h"
#include "engine/constrain/recognizer.h"
#include "engine/constrain/token_trie.h"
#include "engine/generation/logits_constraint.h"

namespace mnemo::engine {

struct ConstraintPart {
  std::optional<int32_t> token;             // set: exactly this token
  std::shared_ptr<const Grammar> grammar;   // otherwise: bytes of this grammar
};

class GrammarConstraint : public LogitsConstraint {
 public:
  // Two grammar parts may not be adjacent. end_tokens (e.g. EOS) may end
  // the last grammar part once it is complete; without them the last part
  // ends when no byte can extend it. Throws std::invalid_argument for an
  // empty list, adjacent grammars or a token id outside the vocabulary.
  GrammarConstraint(std::shared_ptr<const TokenTrie> vocab, std::vector<ConstraintPart> parts,
                    std::vector<int32_t> end_tokens = {});

  void mask(std::span<float> logits) const override;
  // Throws std::invalid_argument for a token mask() would not allow.
  void accept(int32_t token) override;
  bool done() const override { return part_ == parts_.size(); }

  // Whether mask() would allow the token (for tests and debugging).
  bool allowed(int32_t token) const;

 private:
  void enter(size_t part);
  void mark_grammar_tokens(std::vector<uint8_t>& allowed) const;
  std::optional<int32_t> token_after_grammar() const;  // the next part's token, when it may come now

  std::shared_ptr<const TokenTrie> vocab_;
  std::vector<ConstraintPart> parts_;
  std::vector<int32_t> end_tokens_;
  size_t part_ = 0;
  std::optional<Recognizer> state_;  // while in a grammar part
};

// Any JSON text valid against the schema (within the limits), ended by one
// of end_tokens (or when nothing can extend it).
std::unique_ptr<GrammarConstraint> make_json_schema_constraint(std::shared_ptr<const TokenTrie> vocab,
                                                               const nlohmann::ordered_json& schema,
                                                               std::vector<int32_t> end_tokens,
                                                               GrammarLimits limits = {});

}  // namespace mnemo::engine
