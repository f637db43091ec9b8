#include "memory/compress/selection.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace mnemo::memory::compress {
namespace {

struct Candidate {
  float score;
  int32_t slot;
  int32_t head;
  bool is_protected;
};

// Strict "ranks before": protected first, then score, then recency, then head.
bool ranks_before(const Candidate& a, const Candidate& b) {
  if (a.is_protected != b.is_protected) return a.is_protected;
  if (a.score != b.score) return a.score > b.score;
  if (a.slot != b.slot) return a.slot > b.slot;
  return a.head < b.head;
}

// Per head, a flag per slot: protected or not.
std::vector<std::vector<bool>> protected_flags(const HeadScores& scores,
                                               std::span<const std::vector<int32_t>> protect) {
  std::vector<std::vector<bool>> flags(scores.size());
  for (size_t h = 0; h < scores.size(); ++h) flags[h].assign(scores[h].size(), false);
  if (protect.empty()) return flags;
  if (protect.size() != scores.size())
    throw std::invalid_argument("selection: " + std::to_string(protect.size()) + " protect lists for " +
                                std::to_string(scores.size()) + " heads");
  for (size_t h = 0; h < scores.size(); ++h)
    for (int32_t s : protect[h]) {
      if (s < 0 || size_t(s) >= scores[h].size())
        throw std::invalid_argument("selection: protected slot " + std::to_string(s) + " outside head " +
                                    std::to_string(h) + " of " + std::to_string(scores[h].size()) + " slots");
      flags[h][size_t(s)] = true;
    }
  return flags;
}

// Every slot that holds something, over the given heads.
std::vector<Candidate> candidates(const HeadScores& scores, const std::vector<std::vector<bool>>& flags,
                                  size_t head_begin, size_t head_end) {
  std::vector<Candidate> out;
  for (size_t h = head_begin; h < head_end; ++h)
    for (size_t s = 0; s < scores[h].size(); ++s) {
      const float v = scores[h][s];
      if (std::isnan(v))
        throw std::invalid_argument("selection: NaN score at head " + std::to_string(h) + " slot " + std::to_string(s));
      if (v == -INFINITY) continue;  // a hole
      out.push_back({v, int32_t(s), int32_t(h), flags[h][s]});
    }
  return out;
}

// Keeps the first `k` candidates in rank order, as sorted keep lists per head.
void keep_top(std::vector<Candidate>& c, int64_t k, KeepLists& keep) {
  if (int64_t(c.size()) > k) {
    std::nth_element(c.begin(), c.begin() + k, c.end(), ranks_before);
    c.resize(size_t(k));
  }
  for (const Candidate& x : c) keep[size_t(x.head)].push_back(x.slot);
}

void check_budget(int64_t budget) {
  if (budget < 0) throw std::invalid_argument("selection: negative budget " + std::to_string(budget));
}

}  // namespace

KeepLists select_headwise(const HeadScores& scores, int64_t budget_total,
                          std::span<const std::vector<int32_t>> protect) {
  check_budget(budget_total);
  const auto flags = protected_flags(scores, protect);
  KeepLists keep(scores.size());
  auto c = candidates(scores, flags, 0, scores.size());
  keep_top(c, budget_total, keep);
  for (auto& k : keep) std::sort(k.begin(), k.end());
  return keep;
}

KeepLists select_uniform(const HeadScores& scores, int64_t budget_per_head,
                         std::span<const std::vector<int32_t>> protect) {
  check_budget(budget_per_head);
  const auto flags = protected_flags(scores, protect);
  KeepLists keep(scores.size());
  for (size_t h = 0; h < scores.size(); ++h) {
    auto c = candidates(scores, flags, h, h + 1);
    keep_top(c, budget_per_head, keep);
    std::sort(keep[h].begin(), keep[h].end());
  }
  return keep;
}

}  // namespace mnemo::memory::compress
