// A tokenizer's vocabulary as byte strings, arranged for constrained
// decoding: a trie walked in preorder (shared prefixes are fed to the
// recogniser once) and the list of "plain" string tokens that need no walk
// inside a JSON string. Built once per tokenizer and shared by every
// request (immutable; safe to use from several threads).
//
// Added tokens (special or not: <|im_end|>, <tool_call>, [TOOL_CALLS]) are
// never part of the trie; constraints that want one name its id.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace mnemo::engine {

class TokenTrie {
 public:
  struct Node {
    uint32_t end;  // one past the last node of this subtree
    uint32_t tokens_begin, tokens_end;  // ids whose bytes end here, in ids()
    uint16_t depth;  // bytes from the root
    uint8_t byte;
  };
  struct Trie {
    std::vector<Node> nodes;    // preorder; nodes[0] is the root
    std::vector<int32_t> ids;
    uint16_t max_depth = 0;
  };
  // A token made of whole printable characters other than '"' and '\',
  // without "</": inside a JSON string it is allowed exactly when its
  // character count fits.
  struct Plain {
    int32_t id;
    uint32_t chars;
    bool slash_first;
  };

  static std::shared_ptr<const TokenTrie> build(const Tokenizer& tokenizer);

  int32_t vocab_size() const { return static_cast<int32_t>(bytes_.size()); }
  // "" for added tokens and unknown ids.
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }
  bool in_trie(int32_t id) const { return id >= 0 && id < vocab_size() && !bytes(id).empty(); }

  const Trie& all() const { return all_; }
  const Trie& non_plain() const { return non_plain_; }
  std::span<const Plain> plain() const { return plain_; }  // by chars, ascending

 private:
  std::vector<std::string> bytes_;
  Trie all_, non_plain_;
  std::vector<Plain> plain_;
};

}  // namespace mnemo::engine
