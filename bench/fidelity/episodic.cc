#include "bench/fidelity/episodic.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "memory/compress/block_prefill.h"
#include "memory/compress/policy.h"
#include "memory/episodes/episode_index.h"
#include "memory/episodes/hidden_state_embedder.h"
#include "memory/episodes/segment.h"

namespace mnemo::bench::fidelity {

namespace ep = memory::episodes;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The most common topic among an episode's windows' utterances.
std::vector<int> episode_topics(const Conversation& c, const ep::EpisodeIndex& index, size_t episodes) {
  std::vector<std::map<int, int64_t>> count(episodes);
  const auto& windows = index.windows();
  for (size_t w = 0; w < windows.size(); ++w) {
    const int32_t e = index.assignment()[w];
    if (e < 0) continue;
    for (size_t u = windows[w].first_utterance; u < windows[w].end_utterance; ++u)
      count[size_t(e)][c.utterances[u].topic] += c.utterances[u].end - c.utterances[u].begin;
  }
  std::vector<int> out(episodes, -1);
  for (size_t e = 0; e < episodes; ++e) {
    int64_t best = 0;
    for (const auto& [topic, n] : count[e])
      if (n > best) best = n, out[e] = topic;
  }
  return out;
}

// "topic:tokens ..." of an episode's windows, then "facts kept/facts" of its
// majority topic in its cache: which topics an episode mixes, and whether its
// cache kept its own facts.
std::string episode_mix(const Conversation& c, const ep::EpisodeIndex& index, int32_t e, const std::set<int32_t>& kept) {
  std::map<int, int64_t> count;
  const auto& windows = index.windows();
  for (size_t w = 0; w < windows.size(); ++w) {
    if (index.assignment()[w] != e) continue;
    for (size_t u = windows[w].first_utterance; u < windows[w].end_utterance; ++u)
      count[c.utterances[u].topic] += c.utterances[u].end - c.utterances[u].begin;
  }
  std::string out;
  for (const auto& [topic, n] : count) out += "t" + std::to_string(topic) + ":" + std::to_string(n) + " ";
  std::map<int, std::pair<int64_t, int64_t>> facts;  // topic -> (kept, all)
  for (const Fact& f : c.facts) {
    auto& [k, all] = facts[f.topic];
    ++all;
    k += kept.count(int32_t(f.value_pos)) > 0;
  }
  out += "| facts kept:";
  for (const auto& [topic, ka] : facts)
    if (count.count(topic)) out += " t" + std::to_string(topic) + " " + std::to_string(ka.first) + "/" + std::to_string(ka.second);
  return out;
}

}  // namespace

EpisodicResult run_episodic(const engine::Model& model, engine::kv::KvCacheManager& kv, const Conversation& c,
                            const EpisodicOptions& o) {
  EpisodicResult r;
  std::vector<std::vector<int32_t>> utterances;
  for (const auto& u : c.utterances)
    utterances.emplace_back(c.tokens.begin() + u.begin, c.tokens.begin() + u.end);

  auto t0 = std::chrono::steady_clock::now();
  auto embedder = std::make_shared<ep::HiddenStateEmbedder>(ep::engine_hidden_state(model, o.embed_layer),
                                                           ep::TokenizeFn{});
  ep::EpisodeIndexOptions io;
  io.episodes = o.episodes;
  ep::EpisodeIndex index(embedder, io);
  std::vector<ep::Segment> windows = ep::segment_token_windows(utterances, o.window);
  // build() embeds (fits) and clusters: one fit alone first tells the two apart.
  (void)embedder->fit(windows);
  r.embed_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  index.build(std::move(windows));
  r.cluster_seconds = std::max(0.0, seconds_since(t0) - r.embed_seconds);
  r.silhouette = index.silhouette();
  const size_t episodes = index.episodes().count();
  const std::vector<int> topic_of_episode = episode_topics(c, index, episodes);

  // One compressed cache per episode, scored by its representative windows.
  std::vector<engine::kv::SeqId> caches(episodes);
  t0 = std::chrono::steady_clock::now();
  for (size_t e = 0; e < episodes; ++e) {
    memory::compress::PolicyOptions po;
    for (const ep::Segment* w : index.representative_windows(int32_t(e)))
      po.text.insert(po.text.end(), w->tokens.begin(), w->tokens.end());
    po.patched_reduce = o.reduce;
    auto policy = memory::compress::make_policy("patched", po);
    memory::compress::BlockPrefillOptions bo;
    bo.block_tokens = o.block;
    bo.layer_budget = o.layer_budget;
    bo.head_wise = o.head_wise;
    caches[e] = kv.create();
    const auto res = memory::compress::block_prefill(model, kv, caches[e], c.tokens, *policy, bo);
    r.peak_kv_bytes = std::max(r.peak_kv_bytes, res.peak_kv_bytes);
    r.held_kv_bytes += res.final_kv_bytes;
  }
  r.prefill_seconds = seconds_since(t0);

  // The value slot of every fact, per cache (uniform selection: head 0 speaks for all).
  std::vector<std::set<int32_t>> kept(episodes);
  for (size_t e = 0; e < episodes; ++e)
    for (int32_t p : memory::compress::slot_positions(kv, caches[e], std::min<int64_t>(1, kv.config().layers - 1), 0))
      kept[e].insert(p);
  for (size_t e = 0; e < episodes; ++e) r.episode_mix.push_back(episode_mix(c, index, int32_t(e), kept[e]));

  r.recall.min_margin = std::numeric_limits<double>::infinity();
  int64_t on_topic = 0;
  for (size_t qi : c.questions) {
    const Fact& f = c.facts[qi];
    t0 = std::chrono::steady_clock::now();
    // Routed on the question's content: the fixed question template is the
    // same for every question and says nothing about where its answer is.
    const ep::Route route = index.route(ep::Segment::of_tokens({f.key}));
    r.route_seconds += seconds_since(t0);
    const size_t e = route.episode < 0 ? 0 : size_t(route.episode);
    if (topic_of_episode[e] == f.topic) ++on_topic;
    const bool held = kept[e].count(int32_t(f.value_pos)) > 0;
    bool elsewhere = false;
    for (size_t o = 0; o < episodes; ++o) elsewhere = elsewhere || (o != e && kept[o].count(int32_t(f.value_pos)));
    r.value_in_routed += held;
    r.value_elsewhere += !held && elsewhere;
    double m = 0;
    ++r.recall.asked;
    if (answer(model, kv, caches[e], f, &m)) {
      ++r.recall.correct;
      r.recall.min_margin = std::min(r.recall.min_margin, m);
    } else if (held) {
      ++r.wrong_with_value;
    }
  }
  if (r.recall.correct == 0) r.recall.min_margin = 0;
  r.routed_to_topic = r.recall.asked ? double(on_topic) / double(r.recall.asked) : 0;
  for (auto s : caches) kv.free(s);
  return r;
}

}  // namespace mnemo::bench::fidelity
