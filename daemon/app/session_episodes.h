#pragma once
// The episodes of one `episodic` session (EpiCache, docs/protocol.md
// "memory"): an EpisodeIndex over the session's user and assistant messages,
// fed as the history grows, re-clustered when it asks to be, and the route of
// a question to an episode. Holds no KV: the per-episode caches are
// SessionMemory's. Pure logic over an embedder, so it is unit-tested with
// TF-IDF and no model.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/chat_template.h"
#include "memory/episodes/episode_index.h"

namespace mnemo::daemon::app {

// "model" (the served model's hidden states) or "tfidf".
using MakeEmbedder = std::function<std::shared_ptr<memory::episodes::Embedder>(const std::string& kind)>;

// What the index is built over: the user and assistant messages with text,
// in order, up to (not including) the last user message, which is the
// question the response answers (it joins the history on the next turn).
std::vector<memory::episodes::Utterance> history_utterances(std::span<const engine::ChatMessage> messages);
// The last user message's text; nullopt when there is none.
std::optional<std::string> question_text(std::span<const engine::ChatMessage> messages);

class SessionEpisodes {
 public:
  // method: k-means of the windows, or time-ordered chunks of them (memory.segmentation).
  SessionEpisodes(std::string embedder, size_t episodes, MakeEmbedder make,
                  memory::episodes::EpisodeMethod method = memory::episodes::EpisodeMethod::KMeans);
  // From state(); throws (std::exception) when the state cannot be read.
  static SessionEpisodes restore(const nlohmann::json& state, MakeEmbedder make);
  nlohmann::json state() const;

  struct Sync {
    size_t added = 0;        // utterances fed to the index
    bool reset = false;      // the history no longer extends what the index held: rebuilt from scratch
    bool fell_back = false;  // the model embedder failed: now tfidf, rebuilt from scratch
    std::string reason;      // why it re-clustered ("" when it did not)
    memory::episodes::ReclusterResult result;  // when it did
  };
  // Brings the index up to `history` (history_utterances of the prompt) and
  // re-clusters when the index asks (unclustered, growth, low confidence).
  // A model embedder that throws is replaced by TF-IDF.
  Sync sync(std::span<const memory::episodes::Utterance> history);
  // The episode of a question (-1 when there are no episodes yet).
  memory::episodes::Route route(const std::string& question);

  size_t episodes() const { return index_->episodes().count(); }
  const std::string& embedder() const { return embedder_; }
  memory::episodes::EpisodeMethod method() const { return method_; }
  const memory::episodes::EpisodeIndex& index() const { return *index_; }
  // The texts the episode's cache is scored by: its representative windows in time order.
  std::vector<std::string> representative_texts(int32_t episode) const;

 private:
  void reset();

  std::string embedder_;
  size_t episodes_;
  memory::episodes::EpisodeMethod method_;
  MakeEmbedder make_;
  std::unique_ptr<memory::episodes::EpisodeIndex> index_;
  // The utterances fed so far: how many, and a hash of them in order (a
  // rewritten history is detected and rebuilt, not extended).
  size_t fed_ = 0;
  uint64_t fed_hash_ = 0;
};

}  // namespace mnemo::daemon::app
