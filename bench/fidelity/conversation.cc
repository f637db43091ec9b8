#include "bench/fidelity/conversation.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>

#include "engine/model/recall_testbed.h"

namespace mnemo::bench::fidelity {

namespace {

// The testbed's vocabulary: ids below kReserved carry no topic; id t >= kReserved
// belongs to topic (t - kReserved) % topics.
constexpr int32_t kReserved = engine::kRecallReserved;
constexpr int32_t kVocab = engine::kRecallVocab;
constexpr int32_t kSpeaker[] = {10, 11};  // reserved ids, neither question prefix nor separator

// Per topic: tokens drawn once each for keys and values (a key must occur only
// once in a context), and filler words that repeat freely.
class Vocabulary {
 public:
  Vocabulary(int64_t topics, std::mt19937_64& rng) : rng_(rng), unique_(size_t(topics)), filler_(size_t(topics)) {
    for (int32_t t = kReserved; t < kVocab; ++t) {
      const size_t topic = size_t((t - kReserved) % topics);
      // Alternate so both pools spread over the whole id range.
      (((t - kReserved) / topics) % 2 == 0 ? unique_ : filler_)[topic].push_back(t);
    }
    for (auto& u : unique_) std::shuffle(u.begin(), u.end(), rng_);
  }
  int32_t fresh(int topic) {
    auto& u = unique_[size_t(topic)];
    if (u.empty()) throw std::runtime_error("conversation: topic " + std::to_string(topic) + " ran out of unique tokens");
    const int32_t t = u.back();
    u.pop_back();
    return t;
  }
  int32_t filler(int topic) {
    const auto& f = filler_[size_t(topic)];
    return f[std::uniform_int_distribution<size_t>(0, f.size() - 1)(rng_)];
  }

 private:
  std::mt19937_64& rng_;
  std::vector<std::vector<int32_t>> unique_, filler_;
};

// One utterance of `len` tokens: a speaker mark, topic words, and `facts`
// key/value pairs at random places (never adjacent to another fact).
void add_utterance(Conversation& c, Vocabulary& vocab, std::mt19937_64& rng, int topic, int episode, int speaker,
                   int64_t len, int64_t facts) {
  Utterance u{int64_t(c.tokens.size()), 0, topic, episode};
  c.tokens.push_back(kSpeaker[speaker % 2]);
  len = std::max<int64_t>(len, 3 * facts + 2);
  std::vector<int64_t> slots;  // word index where a fact starts
  const int64_t words = len - 1;
  for (int64_t f = 0; f < facts; ++f) slots.push_back(std::uniform_int_distribution<int64_t>(0, words / 3 - 1)(rng) * 3);
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  int64_t w = 0;
  for (int64_t s : slots) {
    for (; w < s; ++w) c.tokens.push_back(vocab.filler(topic));
    Fact f{vocab.fresh(topic), vocab.fresh(topic), 0, topic};
    c.tokens.push_back(f.key);
    f.value_pos = int64_t(c.tokens.size());
    c.tokens.push_back(f.value);
    c.facts.push_back(f);
    w += 2;
  }
  for (; w < words; ++w) c.tokens.push_back(vocab.filler(topic));
  u.end = int64_t(c.tokens.size());
  c.utterances.push_back(u);
}

// `n` facts evenly spread over the history's positions.
std::vector<size_t> spread(const std::vector<Fact>& facts, int64_t n) {
  std::vector<size_t> out;
  if (facts.empty() || n <= 0) return out;
  const size_t m = std::min(facts.size(), size_t(n));
  for (size_t i = 0; i < m; ++i) out.push_back(i * facts.size() / m + facts.size() / (2 * m));
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

Conversation synthetic_conversation(const SyntheticOptions& o) {
  if (o.topics < 1 || o.tokens < 64 || o.utterance_tokens < 8 || o.utterances_per_episode < 1)
    throw std::invalid_argument("synthetic_conversation: too small");
  std::mt19937_64 rng(o.seed);
  Vocabulary vocab(o.topics, rng);
  Conversation c;
  c.name = "synthetic-" + std::to_string(o.tokens);
  std::vector<int> order;
  int episode = 0, speaker = 0;
  while (int64_t(c.tokens.size()) < o.tokens) {
    if (order.empty()) {  // every topic once per round, shuffled, no topic twice in a row
      const int last = c.utterances.empty() ? -1 : c.utterances.back().topic;
      for (int t = 0; t < int(o.topics); ++t) order.push_back(t);
      do std::shuffle(order.begin(), order.end(), rng);
      while (o.topics > 1 && order.back() == last);
    }
    const int topic = order.back();
    order.pop_back();
    for (int64_t i = 0; i < o.utterances_per_episode && int64_t(c.tokens.size()) < o.tokens; ++i) {
      const int64_t len = std::uniform_int_distribution<int64_t>(o.utterance_tokens / 2, o.utterance_tokens * 3 / 2)(rng);
      add_utterance(c, vocab, rng, topic, episode, speaker++, std::min(len, o.tokens - int64_t(c.tokens.size()) + 8),
                    o.facts_per_utterance);
    }
    ++episode;
  }
  c.questions = spread(c.facts, o.questions);
  return c;
}

Conversation locomo_conversation(const nlohmann::json& sample, int64_t topics, int64_t target_tokens,
                                 int64_t max_questions, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Vocabulary vocab(topics, rng);
  const auto& conv = sample.at("conversation");
  struct Turn {
    std::string id;
    int session = 0;
    int64_t words = 0;
  };
  std::vector<Turn> turns;
  for (int s = 1; conv.contains("session_" + std::to_string(s)); ++s)
    for (const auto& t : conv.at("session_" + std::to_string(s))) {
      const std::string text = t.value("text", "");
      const int64_t words = 1 + std::count(text.begin(), text.end(), ' ');
      turns.push_back({t.value("dia_id", ""), s, words});
    }
  if (turns.empty()) throw std::runtime_error("locomo: sample has no sessions");
  int64_t total = 0;
  for (const auto& t : turns) total += t.words + 1;
  const double scale = double(target_tokens) / double(total);
  // Facts per turn: one per question with evidence, at its first evidence turn.
  std::map<std::string, size_t> turn_of;
  for (size_t i = 0; i < turns.size(); ++i) turn_of[turns[i].id] = i;
  std::vector<int64_t> facts_at(turns.size(), 0);
  int64_t asked = 0;
  for (const auto& qa : sample.at("qa")) {
    if (!qa.contains("evidence") || !qa.contains("answer")) continue;  // adversarial questions have no answer
    for (const auto& e : qa["evidence"]) {
      if (!e.is_string() || !turn_of.count(e.get<std::string>())) continue;
      ++facts_at[turn_of[e.get<std::string>()]];
      ++asked;
      break;
    }
  }
  if (asked == 0) throw std::runtime_error("locomo: no question has a resolvable evidence turn");
  Conversation c;
  c.name = "locomo-" + sample.value("sample_id", std::string("?"));
  for (size_t i = 0; i < turns.size(); ++i) {
    const int topic = (turns[i].session - 1) % int(topics);
    const int64_t len = std::max<int64_t>(4, std::llround(double(turns[i].words + 1) * scale));
    add_utterance(c, vocab, rng, topic, turns[i].session - 1, int(i), len, facts_at[i]);
  }
  c.questions = spread(c.facts, max_questions);
  return c;
}

std::vector<int32_t> question_tokens(const Fact& f) {
  std::vector<int32_t> q(engine::kRecallQuestionPrefix.begin(), engine::kRecallQuestionPrefix.end());
  q.push_back(f.key);
  return q;
}

}  // namespace mnemo::bench::fidelity
