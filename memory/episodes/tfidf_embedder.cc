#include "memory/episodes/tfidf_embedder.h"

#include <cctype>
#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace mnemo::memory::episodes {
namespace {

bool word_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

}  // namespace

std::vector<std::string> word_tokens(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !word_char(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && word_char(static_cast<unsigned char>(text[j]))) ++j;
    if (j - i >= 2) {
      std::string w(text.substr(i, j - i));
      for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.push_back(std::move(w));
    }
    i = j;
  }
  return out;
}

std::vector<std::string> TfidfEmbedder::terms(const Segment& piece) const {
  std::vector<std::string> units;
  if (options_.tokens) {
    units.reserve(piece.tokens.size());
    for (int32_t t : piece.tokens) units.push_back("#" + std::to_string(t));
  } else {
    units = word_tokens(piece.text);
  }
  std::vector<std::string> out = units;
  if (options_.ngram_max >= 2)
    for (size_t i = 0; i + 1 < units.size(); ++i) out.push_back(units[i] + " " + units[i + 1]);
  return out;
}

Matrix TfidfEmbedder::fit(std::span<const Segment> windows) {
  vocab_.clear();
  std::vector<int64_t> df;
  std::vector<std::vector<std::string>> all_terms;
  all_terms.reserve(windows.size());
  for (const auto& w : windows) {
    all_terms.push_back(terms(w));
    std::unordered_set<int32_t> seen;
    for (const auto& t : all_terms.back()) {
      auto [it, inserted] = vocab_.try_emplace(t, static_cast<int32_t>(vocab_.size()));
      if (inserted) df.push_back(0);
      if (seen.insert(it->second).second) ++df[it->second];
    }
  }
  const double n = static_cast<double>(windows.size());
  idf_.resize(df.size());
  for (size_t i = 0; i < df.size(); ++i) idf_[i] = static_cast<float>(std::log((1.0 + n) / (1.0 + df[i])) + 1.0);
  fitted_windows_ = windows.size();

  Matrix m(windows.size(), idf_.size());
  for (size_t r = 0; r < windows.size(); ++r) {
    auto row = m.row(r);
    for (const auto& t : all_terms[r]) row[vocab_.at(t)] += 1.0f;
    for (size_t i = 0; i < row.size(); ++i) row[i] *= idf_[i];
    normalize(row);
  }
  return m;
}

std::vector<float> TfidfEmbedder::embed(const Segment& piece) const {
  std::vector<float> v(idf_.size(), 0.0f);
  for (const auto& t : terms(piece)) {
    auto it = vocab_.find(t);
    if (it != vocab_.end()) v[it->second] += idf_[it->second];
  }
  normalize(v);
  return v;
}

float TfidfEmbedder::idf(const std::string& term) const {
  auto it = vocab_.find(term);
  return it == vocab_.end() ? 0.0f : idf_[it->second];
}

nlohmann::json TfidfEmbedder::state() const {
  // The vocabulary is a pure function of the windows it was fitted on.
  return {{"tokens", options_.tokens}, {"ngram_max", options_.ngram_max}, {"fitted_windows", fitted_windows_}};
}

void TfidfEmbedder::restore(const nlohmann::json& state, std::span<const Segment> windows) {
  options_.tokens = state.at("tokens").get<bool>();
  options_.ngram_max = state.at("ngram_max").get<int>();
  const size_t n = state.at("fitted_windows").get<size_t>();
  if (n > windows.size())
    throw std::invalid_argument("TfidfEmbedder::restore: fitted on " + std::to_string(n) + " windows, only " +
                                std::to_string(windows.size()) + " given");
  fit(windows.first(n));
}

}  // namespace mnemo::memory::episodes
