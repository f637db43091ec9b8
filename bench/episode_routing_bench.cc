// Does a question reach the episode that holds its evidence? On LoCoMo and
// REALTALK (each conversation on its own): windows of 4 utterances, embedded
// (TF-IDF; the served model's hidden states with --model), clustered into E
// episodes by k-means, each question routed to the nearest centroid. A hit =
// every evidence turn of the question lies in a window of the routed episode.
// Beside it: a random episode (expected share), time-ordered chunks (E
// contiguous chunks, routed to the nearest chunk centroid), routing to the
// episode of the single nearest window (for both partitions), and how often
// the evidence lies inside one k-means episode at all (the ceiling for any
// router).
//   mnemo_episode_routing_bench [--data DIR] [--datasets locomo,realtalk]
//     [--episodes 2,4,8] [--seeds 5] [--window 4] [--threads 1]
//     [--conversations N] [--model DIR [--layer L]] [--json PATH]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench/report.h"
#include "kernels/cpu/parallel.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"
#include "memory/episodes/clustering.h"
#include "memory/episodes/hidden_state_embedder.h"
#include "memory/episodes/segment.h"
#include "memory/episodes/tfidf_embedder.h"

// OpenBLAS (under faiss) keeps its own thread pool; on a shared machine its
// spinning threads and OpenMP's fight (9 s on one thread, 78 s on two).
extern "C" void openblas_set_num_threads(int);

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace mnemo;
using namespace mnemo::memory::episodes;

struct Question {
  std::string text;
  int category = 0;
  std::vector<size_t> evidence;  // utterance indices, sorted, unique
};

struct Conversation {
  std::string name;
  std::vector<Utterance> utterances;
  std::vector<Question> questions;
};

struct EvidenceStats {
  size_t ids = 0;          // evidence ids seen (ranges count their ends)
  size_t unresolved = 0;   // malformed, or naming a turn that is not in the file
  size_t ranges = 0;       // "Dx:a-Dy:b" entries expanded
  size_t skipped_qa = 0;   // questions with no resolvable evidence
  size_t adversarial = 0;  // LoCoMo category 5, not asked
};

// Sessions "session_<N>" (arrays) in numeric order.
std::vector<std::pair<int, const json*>> sessions(const json& obj) {
  static const std::regex re("session_([0-9]+)");
  std::vector<std::pair<int, const json*>> out;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    std::smatch m;
    if (it.value().is_array() && std::regex_match(it.key(), m, re)) out.push_back({std::stoi(m[1]), &it.value()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

// Evidence entries as the data has them: "D1:3", and in REALTALK also ranges
// "D12:3-D12:5", several ids in one entry ("D1:11; D3:18", "D9:1 D4:4"),
// stray spaces and dots ("D 2:18", "D20:6."), and malformed ones ("D17;39",
// "D58", "D:56", "23:29"). Ids are read as numbers ("D30:05" is D30:5).
class EvidenceResolver {
 public:
  void add(int session, int turn, size_t index) { index_[{session, turn}] = index; }

  std::vector<size_t> resolve(const json& evidence, EvidenceStats& st) const {
    std::set<size_t> out;
    for (const auto& e : evidence) {
      if (!e.is_string()) {
        ++st.ids, ++st.unresolved;
        continue;
      }
      resolve_entry(e.get<std::string>(), out, st);
    }
    return {out.begin(), out.end()};
  }

 private:
  struct Cursor {
    const std::string& s;
    size_t p = 0;
    void spaces() {
      while (p < s.size() && s[p] == ' ') ++p;
    }
    std::optional<int> number() {
      size_t b = p;
      while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) ++p;
      if (p == b || p - b > 6) return std::nullopt;
      return std::stoi(s.substr(b, p - b));
    }
    // "D<s>:<t>" at p (p at 'D').
    std::optional<std::pair<int, int>> id() {
      if (p >= s.size() || s[p] != 'D') return std::nullopt;
      ++p;
      spaces();
      auto a = number();
      if (!a || p >= s.size() || s[p] != ':') return std::nullopt;
      ++p;
      auto b = number();
      if (!b) return std::nullopt;
      return std::make_pair(*a, *b);
    }
  };

  void one(std::pair<int, int> id, std::set<size_t>& out, EvidenceStats& st) const {
    ++st.ids;
    auto it = index_.find(id);
    if (it == index_.end()) ++st.unresolved;
    else out.insert(it->second);
  }

  void resolve_entry(const std::string& s, std::set<size_t>& out, EvidenceStats& st) const {
    Cursor c{s};
    bool any = false;
    while (true) {
      const size_t d = s.find('D', c.p);
      if (d == std::string::npos) break;
      c.p = d;
      auto a = c.id();
      any = true;
      if (!a) {
        ++st.ids, ++st.unresolved;
        c.p = std::max(c.p, d + 1);
        continue;
      }
      size_t save = c.p;
      c.spaces();
      if (c.p < s.size() && s[c.p] == '-') {
        ++c.p;
        c.spaces();
        if (auto b = c.id()) {
          ++st.ranges;
          expand(*a, *b, out, st);
          continue;
        }
      }
      c.p = save;
      one(*a, out, st);
    }
    if (!any) ++st.ids, ++st.unresolved;  // "", "23:29"
  }

  // Every turn from a to b; within a session by turn number (gaps in the file
  // count as unresolved), across sessions by position when both ends exist.
  void expand(std::pair<int, int> a, std::pair<int, int> b, std::set<size_t>& out, EvidenceStats& st) const {
    if (a.first == b.first && a.second <= b.second && b.second - a.second < 1000) {
      for (int t = a.second; t <= b.second; ++t) one({a.first, t}, out, st);
      return;
    }
    auto ia = index_.find(a), ib = index_.find(b);
    st.ids += 2;
    if (ia == index_.end() || ib == index_.end() || ia->second > ib->second) {
      st.unresolved += 2;
      return;
    }
    for (size_t i = ia->second; i <= ib->second; ++i) out.insert(i);
  }

  std::map<std::pair<int, int>, size_t> index_;
};

std::pair<int, int> parse_dia_id(const std::string& id) {
  int s = 0, t = 0;
  if (std::sscanf(id.c_str(), "D%d:%d", &s, &t) != 2) return {-1, -1};
  return {s, t};
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return json::parse(in);
}

std::vector<Conversation> load_locomo(const fs::path& file, EvidenceStats& st) {
  std::vector<Conversation> out;
  for (const auto& sample : read_json(file)) {
    Conversation c;
    c.name = sample.at("sample_id").get<std::string>();
    EvidenceResolver r;
    for (const auto& [n, turns] : sessions(sample.at("conversation"))) {
      for (const auto& t : *turns) {
        const auto [s, k] = parse_dia_id(t.at("dia_id").get<std::string>());
        r.add(s, k, c.utterances.size());
        c.utterances.push_back({t.at("speaker").get<std::string>(), t.at("text").get<std::string>()});
      }
    }
    for (const auto& q : sample.at("qa")) {
      const int cat = q.at("category").get<int>();
      if (cat == 5) {
        ++st.adversarial;
        continue;
      }
      Question qq{q.at("question").get<std::string>(), cat, r.resolve(q.at("evidence"), st)};
      if (qq.evidence.empty()) ++st.skipped_qa;
      else c.questions.push_back(std::move(qq));
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Conversation> load_realtalk(const fs::path& dir, EvidenceStats& st) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<Conversation> out;
  for (const auto& f : files) {
    const json chat = read_json(f);
    Conversation c;
    c.name = f.stem().string();
    EvidenceResolver r;
    for (const auto& [n, turns] : sessions(chat)) {
      for (const auto& t : *turns) {
        const auto [s, k] = parse_dia_id(t.at("dia_id").get<std::string>());
        r.add(s, k, c.utterances.size());
        c.utterances.push_back({t.at("speaker").get<std::string>(), t.at("clean_text").get<std::string>()});
      }
    }
    for (const auto& q : chat.at("qa")) {
      Question qq{q.at("question").get<std::string>(), q.at("category").get<int>(), r.resolve(q.at("evidence"), st)};
      if (qq.evidence.empty()) ++st.skipped_qa;
      else c.questions.push_back(std::move(qq));
    }
    out.push_back(std::move(c));
  }
  return out;
}

// Hits over questions for one partition of the windows.
struct Tally {
  double hit = 0, random = 0, nearest_window = 0, one_episode = 0, silhouette = 0;
  size_t questions = 0, runs = 0;
};

// Per question: the episodes holding all of its evidence.
std::vector<std::vector<bool>> episodes_holding(const std::vector<Question>& qs,
                                                const std::vector<std::vector<size_t>>& turn_windows,
                                                const std::vector<int32_t>& assignment, size_t k) {
  std::vector<std::vector<bool>> out;
  for (const auto& q : qs) {
    std::vector<bool> all(k, true);
    for (size_t turn : q.evidence) {
      std::vector<bool> has(k, false);
      for (size_t w : turn_windows[turn]) has[assignment[w]] = true;
      for (size_t e = 0; e < k; ++e) all[e] = all[e] && has[e];
    }
    out.push_back(std::move(all));
  }
  return out;
}

struct Row {
  std::string data, embedder;
  size_t episodes = 0;
  Tally kmeans, chunks;
};

void run_conversation(const Conversation& c, Embedder& embedder, const std::vector<size_t>& es, int seeds,
                      size_t window, std::map<size_t, Row>& rows) {
  const auto windows = segment_windows(c.utterances, {.window = window, .long_message_chars = 1000});
  std::vector<std::vector<size_t>> turn_windows(c.utterances.size());
  for (size_t w = 0; w < windows.size(); ++w)
    for (size_t t = windows[w].first_utterance; t < windows[w].end_utterance; ++t) turn_windows[t].push_back(w);
  const Matrix x = embedder.fit(windows);
  Matrix q;
  q.dim = x.dim;
  for (const auto& qq : c.questions) q.append(embedder.embed(Segment::of_text(qq.text)));
  const auto nearest = Router(x).route_all(q);

  auto score = [&](const Episodes& ep, Tally& t, bool with_silhouette) {
    const size_t k = ep.count();
    const auto holding = episodes_holding(c.questions, turn_windows, ep.assignment, k);
    const auto routes = Router(ep.centroids).route_all(q);
    for (size_t i = 0; i < c.questions.size(); ++i) {
      const auto& h = holding[i];
      const size_t n_hold = static_cast<size_t>(std::count(h.begin(), h.end(), true));
      t.hit += h[routes[i].episode];
      t.random += double(n_hold) / double(k);
      t.one_episode += n_hold > 0;
      t.nearest_window += h[ep.assignment[nearest[i].episode]];
    }
    t.questions += c.questions.size();
    if (with_silhouette) t.silhouette += silhouette_cosine(x, ep.assignment);
    ++t.runs;
  };

  for (size_t e : es) {
    Row& row = rows[e];
    const size_t k = std::min(e, windows.size());
    score(episodes_from_assignment(x, time_chunk_assignment(windows.size(), k), k), row.chunks, true);
    for (int s = 0; s < seeds; ++s) score(kmeans_episodes(x, e, {.seed = 1234 + s}), row.kmeans, true);
  }
}

double pct(double hits, size_t n) { return n ? 100.0 * hits / double(n) : 0.0; }

}  // namespace

int main(int argc, char** argv) {
  const fs::path data = bench::flag(argc, argv, "--data", MNEMO_CONVQA_DIR);
  const std::string json_path =
      bench::flag(argc, argv, "--json", std::string(MNEMO_BENCH_DIR) + "/episode_routing_bench.json");
  const int seeds = std::stoi(bench::flag(argc, argv, "--seeds", "5"));
  const size_t window = std::stoul(bench::flag(argc, argv, "--window", "4"));
  const int threads = std::stoi(bench::flag(argc, argv, "--threads", "1"));
  const std::string model_dir = bench::flag(argc, argv, "--model", "");
  const size_t max_conversations = std::stoul(bench::flag(argc, argv, "--conversations", "1000000"));
  std::vector<size_t> es;
  {
    std::stringstream in(bench::flag(argc, argv, "--episodes", "2,4,8"));
    for (std::string item; std::getline(in, item, ',');) es.push_back(std::stoul(item));
  }
  std::vector<std::string> datasets;
  {
    std::stringstream in(bench::flag(argc, argv, "--datasets", "locomo,realtalk"));
    for (std::string item; std::getline(in, item, ',');) datasets.push_back(item);
  }
  omp_set_num_threads(threads);
  mnemo::kernels::cpu::set_num_threads(threads);
  openblas_set_num_threads(threads);

  if (!fs::exists(data / "locomo10.json") && !fs::exists(data / "realtalk")) {
    std::fprintf(stderr,
                 "episode_routing_bench: no conversation data in %s\n"
                 "  expected locomo10.json and realtalk/Chat_*.json (see ../shared/data/convqa/README.md);\n"
                 "  pass --data DIR to point elsewhere.\n",
                 data.c_str());
    return 2;
  }

  // Embedders: TF-IDF always; the model's hidden states when a model is given.
  struct Named {
    std::string name;
    std::unique_ptr<Embedder> embedder;
  };
  std::vector<Named> embedders;
  embedders.push_back({"tfidf", std::make_unique<TfidfEmbedder>()});
  std::unique_ptr<engine::Model> model;
  std::optional<engine::Tokenizer> tok;
  int64_t layer = 0;
  if (!model_dir.empty()) {
    // The middle layer by default (--layer to change); not tuned: no trained model was at hand.
    model = engine::Model::load(model_dir);
    tok = engine::Tokenizer::load(fs::path(model_dir) / "tokenizer.json");
    layer = std::stoll(
        bench::flag(argc, argv, "--layer", std::to_string(std::max<int64_t>(1, model->config().num_layers / 2))));
    const engine::Tokenizer* t = &*tok;
    embedders.push_back({"hidden-L" + std::to_string(layer),
                         std::make_unique<HiddenStateEmbedder>(engine_hidden_state(*model, layer),
                                                               [t](std::string_view s) { return t->encode(s, false); })});
  } else {
    std::printf("(no --model: hidden-state embedder skipped)\n");
  }

  bench::Table table({"data", "embedder", "E", "QA", "k-means hit %", "random %", "time chunks %",
                      "k-means, nearest window %", "time chunks, nearest window %", "in one k-means episode %",
                      "silhouette", "chunks silhouette"});
  json evidence = json::object();
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& ds : datasets) {
    EvidenceStats st;
    std::vector<Conversation> convs;
    if (ds == "locomo" && fs::exists(data / "locomo10.json")) convs = load_locomo(data / "locomo10.json", st);
    else if (ds == "realtalk" && fs::exists(data / "realtalk")) convs = load_realtalk(data / "realtalk", st);
    else {
      std::fprintf(stderr, "dataset %s: not found under %s, skipped\n", ds.c_str(), data.c_str());
      continue;
    }
    if (convs.size() > max_conversations) convs.resize(max_conversations);
    size_t qa = 0;
    for (const auto& c : convs) qa += c.questions.size();
    std::printf("%s: %zu conversations, %zu questions; evidence ids %zu, unresolved %zu, ranges %zu, "
                "questions without resolvable evidence %zu, adversarial skipped %zu\n",
                ds.c_str(), convs.size(), qa, st.ids, st.unresolved, st.ranges, st.skipped_qa, st.adversarial);
    std::fflush(stdout);
    evidence[ds] = {{"conversations", convs.size()}, {"questions", qa}, {"evidence_ids", st.ids},
                    {"unresolved", st.unresolved}, {"ranges", st.ranges}, {"skipped_questions", st.skipped_qa},
                    {"adversarial_skipped", st.adversarial}};
    for (auto& em : embedders) {
      std::map<size_t, Row> rows;
      for (const auto& c : convs) run_conversation(c, *em.embedder, es, seeds, window, rows);
      for (size_t e : es) {
        const Row& r = rows[e];
        const Tally& k = r.kmeans;
        const Tally& ch = r.chunks;
        table.add({ds, em.name, static_cast<int64_t>(e), static_cast<int64_t>(k.questions / std::max<size_t>(1, seeds)),
                   pct(k.hit, k.questions), pct(k.random, k.questions), pct(ch.hit, ch.questions),
                   pct(k.nearest_window, k.questions), pct(ch.nearest_window, ch.questions), pct(k.one_episode, k.questions),
                   k.runs ? k.silhouette / double(k.runs) : 0.0, ch.runs ? ch.silhouette / double(ch.runs) : 0.0});
      }
      std::printf("  %s done (%.0f s)\n", em.name.c_str(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fflush(stdout);
    }
  }
  std::printf("\nHit = every evidence turn of the question lies in the routed episode; k-means averaged over %d "
              "seeds; random = expected share for a uniformly random episode; time chunks = E contiguous chunks "
              "routed by their centroid; nearest window = routed to the episode of the most similar window instead of the nearest centroid.\n\n",
              seeds);
  table.print();
  bench::write_json(json_path, {{"bench", "episode_routing"},
                                {"data", data.string()},
                                {"seeds", seeds},
                                {"window", window},
                                {"threads", threads},
                                {"loadavg", bench::loadavg()},
                                {"evidence", evidence},
                                {"rows", table.to_json()}});
  return 0;
}
