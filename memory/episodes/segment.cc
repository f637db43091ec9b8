#include "memory/episodes/segment.h"

#include <algorithm>
#include <stdexcept>

namespace mnemo::memory::episodes {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string trimmed(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> out;
  auto emit = [&](size_t b, size_t e) {
    std::string s = trimmed(text.substr(b, e - b));
    if (!s.empty()) out.push_back(std::move(s));
  };
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      emit(start, i);
      start = i + 1;
      continue;
    }
    if (c != '.' && c != '!' && c != '?') continue;
    size_t j = i + 1;  // the terminator run, then closing quotes/brackets
    while (j < text.size() && (text[j] == '.' || text[j] == '!' || text[j] == '?')) ++j;
    while (j < text.size() && (text[j] == '"' || text[j] == '\'' || text[j] == ')' || text[j] == ']')) ++j;
    if (j < text.size() && !is_space(text[j])) {  // "3.5", "e.g.x": not a boundary
      i = j - 1;
      continue;
    }
    emit(start, j);
    start = j;
    i = j - 1;
  }
  emit(start, text.size());
  return out;
}

std::string utterance_line(std::string_view speaker, std::string_view text) {
  std::string line(speaker);
  line += " said, \"";
  line += text;
  line += "\"";
  return line;
}

std::vector<Unit> units_of(std::span<const Utterance> utterances, const SegmenterOptions& options,
                           size_t first_index) {
  std::vector<Unit> units;
  for (size_t u = 0; u < utterances.size(); ++u) {
    const auto& utt = utterances[u];
    if (options.long_message_chars > 0 && utt.text.size() > options.long_message_chars) {
      for (const auto& s : split_sentences(utt.text)) units.push_back({first_index + u, utterance_line(utt.speaker, s)});
    } else {
      units.push_back({first_index + u, utterance_line(utt.speaker, utt.text)});
    }
  }
  return units;
}

Segment window_of(std::span<const Unit> units) {
  if (units.empty()) throw std::invalid_argument("window_of: no units");
  Segment s;
  s.first_utterance = units.front().utterance;
  s.end_utterance = units.back().utterance + 1;
  for (size_t i = 0; i < units.size(); ++i) {
    if (i > 0) s.text += '\n';
    s.text += units[i].line;
  }
  return s;
}

std::vector<Segment> segment_windows(std::span<const Utterance> utterances, const SegmenterOptions& options) {
  if (options.window == 0) throw std::invalid_argument("segment_windows: window must be at least 1");
  const auto units = units_of(utterances, options);
  std::vector<Segment> out;
  for (size_t b = 0; b < units.size(); b += options.window)
    out.push_back(window_of(std::span(units).subspan(b, std::min(options.window, units.size() - b))));
  return out;
}

std::vector<Segment> segment_token_windows(std::span<const std::vector<int32_t>> utterances, size_t window) {
  if (window == 0) throw std::invalid_argument("segment_token_windows: window must be at least 1");
  std::vector<Segment> out;
  for (size_t b = 0; b < utterances.size(); b += window) {
    const size_t e = std::min(utterances.size(), b + window);
    Segment s;
    s.first_utterance = b;
    s.end_utterance = e;
    for (size_t i = b; i < e; ++i) s.tokens.insert(s.tokens.end(), utterances[i].begin(), utterances[i].end());
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<int32_t> time_chunk_assignment(size_t windows, size_t episodes) {
  const size_t e = std::max<size_t>(1, std::min(episodes, windows));
  std::vector<int32_t> out(windows);
  for (size_t i = 0; i < windows; ++i) out[i] = static_cast<int32_t>(i * e / windows);
  return out;
}

}  // namespace mnemo::memory::episodes
