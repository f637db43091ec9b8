// Added tokens of a tokenizer.json: found in the input before the model
// sees it (leftmost-longest), honouring single_word, lstrip, rstrip and
// normalized as HF's AddedVocabulary does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mnemo::engine {

struct AddedToken {
  int32_t id;
  std::string content;
  bool single_word, lstrip, rstrip, normalized, special;
};

class AddedVocab {
 public:
  struct Segment {
    std::optional<int32_t> id;  // set: an added token; unset: plain text
    std::string_view text;
  };

  AddedVocab() = default;
  AddedVocab(const nlohmann::json& list, const std::string& where);

  // Splits on the tokens with normalized == `normalized_set`. For the
  // normalized set, the contents are matched after `normalize` (given later
  // through set_normalized_forms).
  // With match_special false, special tokens are not matched (HF's
  // encode_special_tokens): their text goes to the model like any other.
  // A non-empty `shadow` (as long as text) restricts special tokens further:
  // one matches only where the shadow holds the same bytes at the same place.
  std::vector<Segment> split(std::string_view text, bool normalized_set, bool match_special = true,
                             std::string_view shadow = {}) const;
  void set_normalized_forms(const std::vector<std::string>& forms);  // parallel to tokens()

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(std::string_view content) const;

 private:
  struct Trie {
    struct Node {
      std::unordered_map<unsigned char, int32_t> next;
      int32_t token = -1;  // index into tokens_
    };
    std::vector<Node> nodes{1};
    bool first_byte[256] = {};
    void insert(std::string_view s, int32_t token);
    // Longest token starting at text[pos]; -1 if none. Sets len.
    int32_t longest(std::string_view text, size_t pos, size_t& len) const;
  };
  void build(Trie& trie, bool normalized, const std::vector<std::string>& forms);

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Trie raw_, normalized_;
};

}  // namespace mnemo::engine
