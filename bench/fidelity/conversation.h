#pragma once
// Conversations in the recall testbed's vocabulary (engine/model/recall_testbed.h):
// utterances of one topic's words with key -> value facts embedded, topics
// interleaved in episodes, and questions about facts from every part of the
// history. A question is the fixed question prefix followed by a fact's key;
// it is answered when the model's next-token argmax is the fact's value.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mnemo::bench::fidelity {

struct Fact {
  int32_t key = 0;
  int32_t value = 0;
  int64_t value_pos = 0;  // token index of the value in the conversation
  int topic = 0;
};

struct Utterance {
  int64_t begin = 0, end = 0;  // token range
  int topic = 0;
  int episode = 0;
};

struct Conversation {
  std::string name;
  std::vector<int32_t> tokens;
  std::vector<Utterance> utterances;
  std::vector<Fact> facts;
  std::vector<size_t> questions;  // indexes into facts, spread over the history
};

struct SyntheticOptions {
  int64_t tokens = 4096;          // history length (approximate: whole utterances)
  int64_t topics = 8;             // the testbed's topic count
  int64_t utterance_tokens = 40;  // mean utterance length
  int64_t utterances_per_episode = 8;
  int64_t facts_per_utterance = 1;
  int64_t questions = 64;
  uint64_t seed = 1;
};

// Episodes of utterances, each episode one topic, topics revisited in a
// shuffled order (interleaved, as conversations drift and come back).
Conversation synthetic_conversation(const SyntheticOptions& o);

// LoCoMo's real structure: one utterance per turn (length proportional to its
// words, scaled to about target_tokens), one topic per session (sessions
// cycle through the topics), and one fact per question placed at that
// question's first evidence turn; questions are those facts. `sample` is one
// element of locomo10.json. Throws std::runtime_error for a sample without
// sessions or resolvable evidence.
Conversation locomo_conversation(const nlohmann::json& sample, int64_t topics, int64_t target_tokens,
                                 int64_t max_questions, uint64_t seed);

// The question prefix and the fact's key: what is appended to the history.
std::vector<int32_t> question_tokens(const Fact& f);

}  // namespace mnemo::bench::fidelity
