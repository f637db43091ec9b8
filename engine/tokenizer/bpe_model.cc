#include "engine/tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/error.h"
#include "engine/tokenizer/utf8.h"

namespace mnemo::engine {

namespace {

constexpr size_t kCacheMaxEntries = 1 << 16;
constexpr std::string_view kMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's word marker
constexpr size_t kCacheMaxWordBytes = 256;

std::string opt_string(const nlohmann::json& m, const char* key, const std::string& where) {
  if (!m.contains(key) || m[key].is_null()) return {};
  if (!m[key].is_string()) throw TokenizerError(where + "." + key + " must be a string or null");
  return m[key].get<std::string>();
}

bool opt_bool(const nlohmann::json& m, const char* key, const std::string& where) {
  if (!m.contains(key) || m[key].is_null()) return false;
  if (!m[key].is_boolean()) throw TokenizerError(where + "." + key + " must be a boolean");
  return m[key].get<bool>();
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, const std::string& where) {
  if (!model.contains("vocab") || !model["vocab"].is_object())
    throw TokenizerError(where + ".vocab: missing or not an object");
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    throw TokenizerError(where + ".dropout: BPE dropout is not supported");
  const auto& vocab = model["vocab"];
  vocab_.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 21))
      throw TokenizerError(where + ".vocab[\"" + token + "\"]: id must be an integer in [0, 2^21]");
    const auto i = static_cast<int32_t>(id.get<int64_t>());
    vocab_.insert_or_assign(token, i);
    if (static_cast<size_t>(i) >= id_to_token_.size()) id_to_token_.resize(i + 1);
    id_to_token_[i] = token;
  }
  const std::string unk = opt_string(model, "unk_token", where);
  if (!unk.empty()) {
    auto it = vocab_.find(unk);
    if (it == vocab_.end()) throw TokenizerError(where + ".unk_token '" + unk + "' is not in the vocab");
    unk_id_ = it->second;
  }
  fuse_unk_ = opt_bool(model, "fuse_unk", where);
  byte_fallback_ = opt_bool(model, "byte_fallback", where);
  ignore_merges_ = opt_bool(model, "ignore_merges", where);
  prefix_ = opt_string(model, "continuing_subword_prefix", where);
  suffix_ = opt_string(model, "end_of_word_suffix", where);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = vocab_.find(name);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }

  split_at_marker_ = prefix_.empty() && suffix_.empty() && vocab_.contains(kMarker);
  for (const auto& token : id_to_token_) {
    for (size_t at = token.find(kMarker, 1); split_at_marker_ && at != std::string::npos; at = token.find(kMarker, at + 1)) {
      if (at < kMarker.size() || token.compare(at - kMarker.size(), kMarker.size(), kMarker) != 0) split_at_marker_ = false;
    }
  }

  if (!model.contains("merges") || !model["merges"].is_array())
    throw TokenizerError(where + ".merges: missing or not an array");
  const auto& merges = model["merges"];
  merges_.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& m = merges[rank];
    std::string_view left, right;
    if (m.is_string()) {
      const std::string_view s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ', 1);
      if (space == std::string_view::npos)
        throw TokenizerError(where + ".merges[" + std::to_string(rank) + "]: '" + std::string(s) + "' is not two tokens separated by a space");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get_ref<const std::string&>();
      right = m[1].get_ref<const std::string&>();
    } else {
      throw TokenizerError(where + ".merges[" + std::to_string(rank) + "]: must be \"a b\" or [\"a\", \"b\"]");
    }
    auto a = vocab_.find(left), b = vocab_.find(right);
    if (a == vocab_.end() || b == vocab_.end())
      throw TokenizerError(where + ".merges[" + std::to_string(rank) + "]: '" + std::string(left) + "' or '" + std::string(right) + "' is not in the vocab");
    // The merged token drops the right side's continuing-subword prefix.
    merged.assign(left);
    merged.append(right.starts_with(prefix_) ? right.substr(prefix_.size()) : right);
    auto c = vocab_.find(merged);
    if (c == vocab_.end())
      throw TokenizerError(where + ".merges[" + std::to_string(rank) + "]: merged token '" + merged + "' is not in the vocab");
    merges_.emplace(pair_key(a->second, b->second), Merge{static_cast<int32_t>(rank), c->second});
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return nullptr;
  const std::string& t = id_to_token_[id];
  if (t.empty() && !vocab_.contains(t)) return nullptr;
  return &t;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (!split_at_marker_) return encode_piece(word, out);
  size_t start = 0;
  for (size_t at = word.find(kMarker, 1); at != std::string_view::npos; at = word.find(kMarker, at + kMarker.size())) {
    // A marker after a marker stays in its run ("▁▁" tokens exist).
    if (at >= kMarker.size() && word.compare(at - kMarker.size(), kMarker.size(), kMarker) == 0) continue;
    if (at > start) encode_piece(word.substr(start, at - start), out);
    start = at;
  }
  encode_piece(word.substr(start), out);
}

void BpeModel::encode_piece(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mu_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t mark = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard lock(cache_mu_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(mark), out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool removed;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, n + 1, false});
  };
  int32_t pending_unk = -1;  // an <unk> waiting to be fused with the next
  std::string affixed;
  for (size_t i = 0, len = 0; i < word.size(); i += len) {
    utf8::decode(word, i, len);
    std::string_view piece = word.substr(i, len);
    if ((i > 0 && !prefix_.empty()) || (i + len == word.size() && !suffix_.empty())) {
      affixed.assign(i > 0 ? prefix_ : std::string());
      affixed.append(piece);
      if (i + len == word.size()) affixed += suffix_;
      piece = affixed;
    }
    if (auto it = vocab_.find(piece); it != vocab_.end()) {
      if (pending_unk >= 0) add(pending_unk), pending_unk = -1;
      add(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : piece) all = all && byte_ids_[b] >= 0;
      if (all) {
        if (pending_unk >= 0) add(pending_unk), pending_unk = -1;
        for (unsigned char b : piece) add(byte_ids_[b]);
        continue;
      }
    }
    if (unk_id_) {
      // Consecutive unknown characters become one <unk> when fuse_unk is on.
      if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator<(const Candidate& o) const {  // priority_queue pops the largest
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate> queue;
  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    auto it = merges_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.removed || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Entries go stale when a neighbour merged first; the pair must still
    // produce the same token.
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    left.id = top.new_id;
    right.removed = true;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (const auto& s : symbols) {
    if (!s.removed) out.push_back(s.id);
  }
}

}  // namespace mnemo::engine
