#include "engine/constrain/json_output_constraint.h"

namespace mnemo::engine {

std::shared_ptr<const Grammar> compile_json_output(const nlohmann::ordered_json* schema, const SchemaOptions& options,
                                                   GrammarLimits limits) {
  auto g = std::make_shared<Grammar>(limits);
  g->set_root(schema ? g->add_schema(*schema, options) : g->add_any_object());
  return g;
}

std::unique_ptr<GrammarConstraint> make_json_output_constraint(std::shared_ptr<const TokenTrie> vocab,
                                                               std::shared_ptr<const Grammar> grammar,
                                                               std::vector<int32_t> end_tokens) {
  std::vector<ConstraintPart> parts = {{std::nullopt, std::move(grammar)}};
  return std::make_unique<GrammarConstraint>(std::move(vocab), std::move(parts), std::move(end_tokens));
}

}  // namespace mnemo::engine
