#pragma once
// Training-free lexical embedder: TF-IDF over word unigrams and bigrams (or,
// for token conversations, over token ids), fitted on the conversation's own
// windows. Same weighting as scikit-learn's TfidfVectorizer defaults: words
// are lowercased runs of 2+ word characters, tf = raw count,
// idf = ln((1 + n) / (1 + df)) + 1, rows L2-normalised.
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "memory/episodes/embedder.h"

namespace mnemo::memory::episodes {

struct TfidfOptions {
  bool tokens = false;  // terms are Segment::tokens ids instead of words of Segment::text
  int ngram_max = 2;    // 1: unigrams; 2: unigrams and bigrams
};

class TfidfEmbedder final : public Embedder {
 public:
  explicit TfidfEmbedder(TfidfOptions options = {}) : options_(options) {}

  std::string name() const override { return options_.tokens ? "tfidf-tokens" : "tfidf"; }
  Matrix fit(std::span<const Segment> windows) override;
  std::vector<float> embed(const Segment& piece) const override;
  size_t dim() const override { return idf_.size(); }
  nlohmann::json state() const override;
  void restore(const nlohmann::json& state, std::span<const Segment> windows) override;

  // The terms of a piece in order (exposed for tests): words, then bigrams
  // "a b"; token ids render as "#<id>".
  std::vector<std::string> terms(const Segment& piece) const;
  // idf of a term, or 0 when the vocabulary lacks it.
  float idf(const std::string& term) const;

 private:
  TfidfOptions options_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<float> idf_;
  size_t fitted_windows_ = 0;
};

// Lowercased runs of 2+ word characters (ASCII letters, digits, '_', and
// every non-ASCII byte so UTF-8 letters stay inside words).
std::vector<std::string> word_tokens(std::string_view text);

}  // namespace mnemo::memory::episodes
