#pragma once
// The recall testbed: a hand-built 2-layer Llama (exact Hugging Face
// LlamaForCausalLM layout, F32) whose every weight is set by construction so
// that it recalls key -> value pairs exactly: layer 0 is a previous-token
// head, layer 1 an induction head that, at a token K, attends to the slot
// just after an earlier K and predicts the token found there. It measures
// what KV eviction loses: a fact lives in layer 1's entry at its value slot.
// Construction and measured behaviour: shared/testbeds/recall-model.md.
//
// Vocabulary layout (32000 ids), public so benchmarks can build contexts:
// - ids 0..kRecallReserved-1 are "function words" without a topic component
//   (use kRecallQuestionPrefix and kRecallSeparator from among them);
// - id t >= kRecallReserved belongs to topic (t - kRecallReserved) % topics.
// Keys must be unique within a context: a key K is asked as the question
// prefix followed by K, and the answer is right when the argmax is the token
// that followed K in the context.
#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace mnemo::engine {

constexpr int32_t kRecallVocab = 32000;
constexpr int32_t kRecallReserved = 64;
// Asking for a key: these 8 reserved tokens, then the key.
constexpr std::array<int32_t, 8> kRecallQuestionPrefix = {1, 2, 3, 4, 5, 6, 7, 8};
// A reserved token free for utterance boundaries (never a question token).
constexpr int32_t kRecallSeparator = 9;

struct RecallTestbedOptions {
  int64_t topics = 8;  // 1..64; token codes get a shared component per topic
  // Weight of the topic direction in each code: the induction score between
  // tokens of one topic gains 800 * b^2 / 16 nats (10 at sqrt(0.2)) over
  // tokens of different topics, against about 50 for an exact match.
  double topic_b = 0.44721359549995793;  // sqrt(0.2)
  // Layer 1's key is PREV - 0.5 TOK (a token cannot match itself, and a slot
  // whose predecessor was evicted still answers); false: PREV only.
  bool robust = true;
  float rope_theta = 1e10f;  // slow pairs drift 0.33 rad at 32k; 1e12 for 128k
  uint64_t seed = 0;
};

// -1 for reserved tokens (and ids outside the vocabulary).
int recall_topic_of(int32_t token, int64_t topics);
// The index-th token of `topic` (index from 0): kRecallReserved + topic + index * topics.
int32_t recall_topic_token(int64_t topic, int64_t index, int64_t topics);
// How many tokens each topic has (the smallest over topics).
int64_t recall_tokens_per_topic(int64_t topics);
// kRecallQuestionPrefix followed by key.
std::vector<int32_t> recall_question(int32_t key);

// Writes config.json, model.safetensors (F32, untied lm_head, zero MLPs),
// tokenizer.json and tokenizer_config.json (the byte-level BPE that
// `mnemo model new --arch llama --vocab 32000` writes). Deterministic per
// options. Throws std::invalid_argument on out-of-range options.
void generate_recall_testbed(const RecallTestbedOptions& o, const std::filesystem::path& out);

}  // namespace mnemo::engine
