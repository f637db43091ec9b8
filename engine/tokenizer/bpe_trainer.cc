#include "engine/tokenizer/bpe_trainer.h"

#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/error.h"
#include "engine/tokenizer/pre_tokenizer.h"

namespace mnemo::engine {

const char* const kLlama3SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

using Pair = std::pair<int32_t, int32_t>;

uint64_t key(Pair p) { return (static_cast<uint64_t>(static_cast<uint32_t>(p.first)) << 32) | static_cast<uint32_t>(p.second); }
Pair unkey(uint64_t k) { return {static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xFFFFFFFFu)}; }

nlohmann::json pre_tokenizer_json() {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", kLlama3SplitPattern}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
}

nlohmann::json byte_level_json(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", trim_offsets}, {"use_regex", use_regex}};
}

nlohmann::json post_processor_json(const std::optional<std::string>& bos, int32_t bos_id) {
  if (!bos) return byte_level_json(true, false, true);
  auto special = [&](int type_id) { return nlohmann::json{{"SpecialToken", {{"id", *bos}, {"type_id", type_id}}}}; };
  auto seq = [](const char* id, int type_id) { return nlohmann::json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
  nlohmann::json template_processing = {
      {"type", "TemplateProcessing"},
      {"single", {special(0), seq("A", 0)}},
      {"pair", {special(0), seq("A", 0), special(1), seq("B", 1)}},
      {"special_tokens", {{*bos, {{"id", *bos}, {"ids", {bos_id}}, {"tokens", {*bos}}}}}}};
  return {{"type", "Sequence"}, {"processors", {byte_level_json(true, false, true), template_processing}}};
}

// Pre-tokenized words of the corpus with their counts, as byte-id sequences,
// in first-seen order so training does not depend on hash order.
struct Words {
  std::vector<std::vector<int32_t>> symbols;
  std::vector<int64_t> counts;
};

Words count_words(std::string_view corpus) {
  std::vector<PreToken> pieces{{std::string(corpus), true}};
  // Split only: the trainer works on raw bytes, ByteLevel mapping comes last.
  PreTokenizer split_only = PreTokenizer::from_json(
      {{"type", "Split"}, {"pattern", {{"Regex", kLlama3SplitPattern}}}, {"behavior", "Isolated"}, {"invert", false}}, "trainer");
  split_only.apply(pieces);
  Words words;
  std::unordered_map<std::string, size_t> index;
  for (auto& p : pieces) {
    auto [it, fresh] = index.emplace(std::move(p.text), words.counts.size());
    if (fresh) {
      std::vector<int32_t> ids;
      for (unsigned char b : it->first) ids.push_back(b);
      words.symbols.push_back(std::move(ids));
      words.counts.push_back(0);
    }
    ++words.counts[it->second];
  }
  return words;
}

}  // namespace

nlohmann::json train_byte_level_bpe(std::string_view corpus, int32_t vocab_size,
                                    const std::vector<std::string>& special_tokens,
                                    std::optional<std::string> bos_token) {
  const auto n_special = static_cast<int32_t>(special_tokens.size());
  if (vocab_size < 256 + n_special)
    throw TokenizerError("train_byte_level_bpe: vocab_size " + std::to_string(vocab_size) + " is below 256 bytes + " +
                         std::to_string(n_special) + " special tokens");
  if (bos_token && std::find(special_tokens.begin(), special_tokens.end(), *bos_token) == special_tokens.end())
    throw TokenizerError("train_byte_level_bpe: bos_token '" + *bos_token + "' is not among the special tokens");

  std::vector<std::string> strings(byte_level::byte_to_chars().begin(), byte_level::byte_to_chars().end());
  std::unordered_map<std::string, int32_t> vocab;
  for (int32_t i = 0; i < 256; ++i) vocab.emplace(strings[i], i);
  nlohmann::json merges = nlohmann::json::array();
  const int32_t learned_target = vocab_size - n_special;

  Words words = count_words(corpus);
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;
  for (int32_t w = 0; w < static_cast<int32_t>(words.symbols.size()); ++w) {
    const auto& s = words.symbols[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = key({s[i], s[i + 1]});
      pair_count[k] += words.counts[w];
      pair_words[k].push_back(w);
    }
  }
  struct Entry {
    int64_t count;
    Pair pair;
    bool operator<(const Entry& o) const {  // top of the queue: highest count, then smallest pair
      return count != o.count ? count < o.count : pair > o.pair;
    }
  };
  std::priority_queue<Entry> heap;
  {
    // Seed in key order so equal counts cannot depend on hash iteration.
    std::map<uint64_t, int64_t> ordered(pair_count.begin(), pair_count.end());
    for (auto [k, c] : ordered) heap.push({c, unkey(k)});
  }
  std::vector<int32_t> seen(words.symbols.size(), -1);
  int32_t learned = 256;
  int32_t step = 0;
  while (learned < learned_target && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const uint64_t k = key(top.pair);
    const auto it = pair_count.find(k);
    const int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != top.count) {
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current <= 0) continue;
    std::string merged = strings[top.pair.first] + strings[top.pair.second];
    int32_t new_id;
    if (auto v = vocab.find(merged); v != vocab.end()) {
      new_id = v->second;
    } else {
      new_id = static_cast<int32_t>(strings.size());
      strings.push_back(merged);
      vocab.emplace(std::move(merged), new_id);
      ++learned;
    }
    merges.push_back(strings[top.pair.first] + " " + strings[top.pair.second]);
    ++step;
    std::map<uint64_t, int64_t> touched;  // pairs whose count grew, pushed in key order
    const std::vector<int32_t> affected = std::move(pair_words[k]);
    pair_words.erase(k);
    for (int32_t w : affected) {
      if (seen[w] == step) continue;
      seen[w] = step;
      auto& s = words.symbols[w];
      const int64_t c = words.counts[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) pair_count[key({s[i], s[i + 1]})] -= c;
      std::vector<int32_t> out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == top.pair.first && s[i + 1] == top.pair.second) {
          out.push_back(new_id);
          ++i;
        } else {
          out.push_back(s[i]);
        }
      }
      s = std::move(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t pk = key({s[i], s[i + 1]});
        pair_count[pk] += c;
        if (s[i] == new_id || s[i + 1] == new_id) {
          touched[pk] = pair_count[pk];
          pair_words[pk].push_back(w);
        }
      }
    }
    pair_count.erase(k);
    for (auto [pk, c] : touched) heap.push({pair_count[pk], unkey(pk)});
  }

  nlohmann::json vocab_json = nlohmann::json::object();
  for (int32_t i = 0; i < static_cast<int32_t>(strings.size()); ++i) vocab_json[strings[i]] = i;
  nlohmann::json added = nlohmann::json::array();
  auto add_special = [&](const std::string& content, int32_t id) {
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  };
  int32_t next_id = learned;
  int32_t bos_id = -1;
  for (const auto& s : special_tokens) {
    if (bos_token && s == *bos_token) bos_id = next_id;
    add_special(s, next_id++);
  }
  for (int32_t n = 0; next_id < vocab_size; ++n) add_special("<|reserved_" + std::to_string(n) + "|>", next_id++);

  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer_json()},
      {"post_processor", post_processor_json(bos_token, bos_id)},
      {"decoder", byte_level_json(true, true, true)},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab_json}, {"merges", merges}}},
  };
}

}  // namespace mnemo::engine
