#include "engine/constrain/grammar.h"

#include <algorithm>
#include <stdexcept>

namespace mnemo::engine {

Grammar::Grammar(GrammarLimits limits) : limits_(limits) {
  if (limits_.max_string_chars == 0 || limits_.max_key_chars == 0 || limits_.max_int_digits == 0 ||
      limits_.max_frac_digits == 0 || limits_.max_exp_digits == 0 || limits_.any_depth < 0)
    throw std::invalid_argument("grammar limits: string, key and digit limits must be positive");
}

uint32_t Grammar::add(GrammarNode n) {
  nodes_.push_back(std::move(n));
  return static_cast<uint32_t>(nodes_.size() - 1);
}

uint32_t Grammar::add_literal(std::string_view text) { return add_choice({{std::string(text), -1}}); }

uint32_t Grammar::add_choice(const std::vector<std::pair<std::string, int32_t>>& alternatives) {
  if (alternatives.empty()) throw std::invalid_argument("grammar: a choice needs at least one alternative");
  GrammarNode n{.kind = GrammarNode::Kind::Literal};
  n.trie.emplace_back();
  for (const auto& [text, next] : alternatives) {
    if (text.empty()) throw std::invalid_argument("grammar: empty literal");
    uint32_t at = 0;
    for (const char ch : text) {
      const auto b = static_cast<uint8_t>(ch);
      auto& edges = n.trie[at].edges;
      auto it = std::find_if(edges.begin(), edges.end(), [&](const GrammarNode::Edge& e) { return e.byte == b; });
      if (it != edges.end()) {
        at = it->to;
      } else {
        const auto to = static_cast<uint32_t>(n.trie.size());
        n.trie[at].edges.push_back({b, to});  // before emplace_back: it may move the edges
        n.trie.emplace_back();
        at = to;
      }
    }
    n.trie[at].terminal = true;
    if (next >= 0) n.trie[at].next = next;
  }
  // A literal followed by more must end before any longer alternative
  // starts, or the recogniser could not tell where it ends.
  for (const auto& t : n.trie)
    if (t.next >= 0 && !t.edges.empty())
      throw std::invalid_argument("grammar: a literal with a continuation is a prefix of another");
  return add(std::move(n));
}

uint32_t Grammar::add_seq(std::vector<uint32_t> parts) {
  if (parts.empty()) throw std::invalid_argument("grammar: empty sequence");
  return add(GrammarNode{.kind = GrammarNode::Kind::Seq, .parts = std::move(parts)});
}

uint32_t Grammar::string_node(uint32_t min_chars, uint32_t max_chars) {
  return add(GrammarNode{.kind = GrammarNode::Kind::String, .min_count = min_chars, .max_count = max_chars});
}

uint32_t Grammar::number_node(bool integer, bool non_negative) {
  return add(GrammarNode{.kind = GrammarNode::Kind::Number, .integer = integer, .non_negative = non_negative});
}

uint32_t Grammar::any_value(int depth) {
  if (any_by_depth_.size() <= static_cast<size_t>(depth)) any_by_depth_.resize(static_cast<size_t>(depth) + 1, -1);
  if (any_by_depth_[static_cast<size_t>(depth)] >= 0) return static_cast<uint32_t>(any_by_depth_[static_cast<size_t>(depth)]);
  std::vector<uint32_t> alts = {string_node(0, limits_.max_string_chars), number_node(false, false),
                                add_choice({{"true", -1}, {"false", -1}, {"null", -1}})};
  if (depth > 0) {
    const uint32_t inner = any_value(depth - 1);
    alts.push_back(add(GrammarNode{.kind = GrammarNode::Kind::Array, .item = inner, .max_count = limits_.max_array_items}));
    alts.push_back(add(GrammarNode{.kind = GrammarNode::Kind::FreeObject,
                                   .item = inner,
                                   .key = string_node(0, limits_.max_key_chars),
                                   .max_count = limits_.max_object_keys}));
  }
  GrammarNode u{.kind = GrammarNode::Kind::Union};
  u.dispatch.assign(256, -1);
  for (const uint32_t a : alts) {
    const auto first = first_bytes(a);
    for (int b = 0; b < 256; ++b)
      if (first[static_cast<size_t>(b)]) u.dispatch[static_cast<size_t>(b)] = static_cast<int32_t>(a);
  }
  const uint32_t id = add(std::move(u));
  any_by_depth_[static_cast<size_t>(depth)] = static_cast<int32_t>(id);
  return id;
}

uint32_t Grammar::add_any_object() {
  // Its values nest one level less, so the whole object keeps within
  // any_depth like any other free value.
  return add(GrammarNode{.kind = GrammarNode::Kind::FreeObject,
                         .item = any_value(std::max(0, limits_.any_depth - 1)),
                         .key = string_node(0, limits_.max_key_chars),
                         .max_count = limits_.max_object_keys});
}

std::vector<bool> Grammar::first_bytes(uint32_t id) const {
  std::vector<bool> out(256, false);
  const GrammarNode& n = nodes_[id];
  switch (n.kind) {
    case GrammarNode::Kind::Literal:
      for (const auto& e : n.trie[0].edges) out[e.byte] = true;
      break;
    case GrammarNode::Kind::Seq:
      return first_bytes(n.parts[0]);
    case GrammarNode::Kind::Object:
    case GrammarNode::Kind::FreeObject:
      out['{'] = true;
      break;
    case GrammarNode::Kind::Array:
      out['['] = true;
      break;
    case GrammarNode::Kind::String:
      out['"'] = true;
      break;
    case GrammarNode::Kind::Number:
      for (int c = '0'; c <= '9'; ++c) out[static_cast<size_t>(c)] = true;
      if (!n.non_negative) out['-'] = true;
      break;
    case GrammarNode::Kind::Union:
      for (int b = 0; b < 256; ++b) out[static_cast<size_t>(b)] = n.dispatch[static_cast<size_t>(b)] >= 0;
      break;
  }
  return out;
}

}  // namespace mnemo::engine
