// What KV compression costs in recall, on the recall testbed (a model whose
// recall is known exactly): every policy at every compression ratio on
// conversations of 4k, 16k and 32k tokens (interleaved topic episodes) and on
// conversations shaped like LoCoMo's (facts at the evidence turns of its
// questions), compressed once by block-wise prefill before any question is
// known; recall as a % of full KV, peak KV against the budget, prefill and
// decode time. Then decode with a 32k history on a TinyLlama-shaped model at
// 8x compression against full KV, beside what the bytes read predict.
//   mnemo_fidelity_bench [--lengths 4096,16384,32768] [--ratios 2,4,6,8,16]
//     [--policies streaming,snapkv,h2o,keydiff,patched] [--selection uniform,headwise]
//     [--questions 64] [--block 512] [--layer-budgets calibrated|uniform]
//     [--locomo N] [--locomo-tokens 16384] [--large-decode on|off] [--json PATH]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/fidelity/conversation.h"
#include "bench/fidelity/episodic.h"
#include "bench/fidelity/large_decode.h"
#include "bench/fidelity/recall.h"
#include "bench/report.h"
#include "engine/model/model.h"
#include "engine/model/recall_testbed.h"
#include "kernels/cpu/matmul.h"
#include "memory/compress/block_prefill.h"
#include "memory/compress/layer_calibration.h"
#include "memory/compress/policy.h"

namespace {

namespace fs = std::filesystem;
using namespace mnemo;
using namespace mnemo::bench::fidelity;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Setup {
  const engine::Model* model = nullptr;
  std::vector<std::string> policies;
  std::vector<double> ratios;
  std::vector<std::string> selections;  // uniform (per head) and/or headwise (flattened over a layer's heads)
  const memory::compress::LayerBudgetCalibration* calibration = nullptr;  // null: the same budget in every layer
  int64_t block = 512;
  EpisodicOptions episodic;  // for the "episodic" policy
};

engine::kv::KvCacheManager make_cache(const engine::ModelConfig& c, int64_t tokens) {
  engine::kv::KvConfig k;
  k.layers = c.num_layers, k.kv_heads = c.num_kv_heads, k.head_dim = c.head_dim, k.block_size = 16;
  // f32 KV: the testbed's recall is validated in f32 (its logits are ~50
  // nats apart), and the policies, not the KV precision, are compared here.
  k.dtype = kernels::KvDType::F32;
  // The history, a question fork's partial blocks and headroom for uneven heads.
  k.bytes_budget = k.layers * k.bytes_per_block() * ((tokens * 5 / 4) / k.block_size + 64);
  return engine::kv::KvCacheManager(k);
}

// The queries `patched` scores with when no episode is known: the instruction
// and a uniform sample of the history's utterances (one view of everything).
std::vector<int32_t> global_sample(const Conversation& c, int64_t tokens) {
  std::vector<int32_t> out;
  const size_t step = std::max<size_t>(1, c.utterances.size() * 40 / size_t(std::max<int64_t>(tokens, 1)));
  for (size_t i = 0; i < c.utterances.size() && int64_t(out.size()) < tokens; i += step)
    for (int64_t t = c.utterances[i].begin; t < c.utterances[i].end; ++t) out.push_back(c.tokens[size_t(t)]);
  return out;
}

void run_conversation(const Setup& s, const Conversation& c, bench::Table& table) {
  const engine::ModelConfig& mc = s.model->config();
  const int64_t n = int64_t(c.tokens.size());
  // Room for the history, or for every episode's cache at the mildest ratio.
  int64_t room = n;
  if (std::find(s.policies.begin(), s.policies.end(), "episodic") != s.policies.end())
    room = std::max(room, int64_t(s.episodic.episodes) *
                              (int64_t(double(n) / *std::min_element(s.ratios.begin(), s.ratios.end())) + s.block));
  auto kv = make_cache(mc, room);
  const int64_t per_token = kv.bytes_per_block() * mc.num_layers / kv.config().block_size;

  // Full KV: the reference every policy is measured against.
  auto full_policy = memory::compress::make_policy("full", {});
  memory::compress::BlockPrefillOptions full_opts;
  full_opts.block_tokens = s.block;
  full_opts.layer_budget.assign(size_t(mc.num_layers), n);
  const auto seq_full = kv.create();
  const auto t0 = std::chrono::steady_clock::now();
  const auto full_res = memory::compress::block_prefill(*s.model, kv, seq_full, c.tokens, *full_policy, full_opts);
  const double full_prefill = seconds_since(t0);
  const RecallResult full = ask_questions(*s.model, kv, seq_full, c);
  const double full_decode = decode_seconds_per_token(*s.model, kv, seq_full, 8);
  kv.free(seq_full);
  std::printf("%s: %lld tokens, %zu facts, %lld questions; full KV recall %.1f%% (min margin %.1f), prefill %.1f s\n",
              c.name.c_str(), (long long)n, c.facts.size(), (long long)full.asked, 100 * full.accuracy(),
              full.min_margin, full_prefill);
  table.add({c.name, n, "full", "-", 1.0, n, 100.0, 100 * full.accuracy(), double(full_res.peak_kv_bytes) / (1 << 20),
             double(n * per_token) / (1 << 20), double(n * per_token) / (1 << 20), "yes", full_prefill,
             1e3 * full_decode, std::string("-"), double(full_res.final_kv_bytes) / (1 << 20)});

  for (const auto& selection : s.selections) {
    for (const auto& name : s.policies) {
      for (double ratio : s.ratios) {
        const int64_t budget = std::max<int64_t>(s.block / 4, int64_t(double(n) / ratio));
        const std::vector<int64_t> budgets = s.calibration ? s.calibration->budgets(budget)
                                                           : std::vector<int64_t>(size_t(mc.num_layers), budget);
        const int64_t bs = kv.config().block_size;
        const double budget_mib = double(budget * per_token) / (1 << 20);
        // Whole blocks: the budget rounded up, plus one prefill block.
        const double bound_mib = double(((budget + bs - 1) / bs * bs + s.block) * per_token) / (1 << 20);
        if (name == "episodic") {
          EpisodicOptions eo = s.episodic;
          eo.block = s.block;
          eo.layer_budget = budgets;
          eo.head_wise = selection == "headwise";
          const EpisodicResult e = run_episodic(*s.model, kv, c, eo);
          const double peak_mib = double(e.peak_kv_bytes) / (1 << 20);
          const double pct = full.correct ? 100.0 * double(e.recall.correct) / double(full.correct) : 0.0;
          table.add({c.name, n, name, selection, ratio, budget, pct, 100 * e.recall.accuracy(), peak_mib, budget_mib,
                     bound_mib, peak_mib <= bound_mib * 1.0001 ? "yes" : "NO", e.prefill_seconds,
                     std::string("-"), 100 * e.routed_to_topic, double(e.held_kv_bytes) / (1 << 20)});
          std::printf("  %-9s %-8s %4.0fx: recall %5.1f%% of full, %zu episodes (silhouette %.3f), routed to the "
                      "fact's topic %.0f%%, peak %.1f MiB per cache (bound %.1f), %.1f MiB for all; embed %.2f s, "
                      "cluster %.2f s, prefill %.1f s, routing %.3f s\n",
                      name.c_str(), selection.c_str(), ratio, pct, eo.episodes, e.silhouette, 100 * e.routed_to_topic,
                      peak_mib, bound_mib, double(e.held_kv_bytes) / (1 << 20), e.embed_seconds, e.cluster_seconds,
                      e.prefill_seconds, e.route_seconds);
          std::printf("    answers: value slot in the routed cache %lld of %lld, only in another cache %lld, wrong "
                      "with the value held %lld\n",
                      (long long)e.value_in_routed, (long long)e.recall.asked, (long long)e.value_elsewhere,
                      (long long)e.wrong_with_value);
          for (size_t i = 0; i < e.episode_mix.size(); ++i) std::printf("    episode %zu: %s\n", i, e.episode_mix[i].c_str());
          std::fflush(stdout);
          continue;
        }
        memory::compress::PolicyOptions po;
        if (name == "patched") po.text = global_sample(c, 512);
        auto policy = memory::compress::make_policy(name, po);
        memory::compress::BlockPrefillOptions opts;
        opts.block_tokens = s.block;
        opts.layer_budget = budgets;
        opts.head_wise = selection == "headwise";
        const auto seq = kv.create();
        const auto t1 = std::chrono::steady_clock::now();
        const auto res = memory::compress::block_prefill(*s.model, kv, seq, c.tokens, *policy, opts);
        const double prefill = seconds_since(t1);
        const RecallResult r = ask_questions(*s.model, kv, seq, c);
        const double decode = decode_seconds_per_token(*s.model, kv, seq, 8);
        kv.free(seq);
        const double peak_mib = double(res.peak_kv_bytes) / (1 << 20);
        const double pct = full.correct ? 100.0 * double(r.correct) / double(full.correct) : 0.0;
        table.add({c.name, n, name, selection, ratio, budget, pct, 100 * r.accuracy(), peak_mib, budget_mib, bound_mib,
                   peak_mib <= bound_mib * 1.0001 ? "yes" : "NO", prefill, 1e3 * decode, std::string("-"),
                   double(res.final_kv_bytes) / (1 << 20)});
        std::printf("  %-9s %-8s %4.0fx: recall %5.1f%% of full, peak %.1f MiB (bound %.1f), prefill %.1f s\n",
                    name.c_str(), selection.c_str(), ratio, pct, peak_mib, bound_mib, prefill);
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::printf("%s", "mnemo_fidelity_bench: recall of KV compression policies on the recall testbed.\n"
                      "  --lengths L,..      synthetic history lengths in tokens (4096,16384,32768; 0 for none)\n"
                      "  --ratios R,..       compression ratios (2,4,6,8,16)\n"
                      "  --policies P,..     streaming,snapkv,h2o,keydiff,patched,episodic\n"
                      "  --episodes E        episodes of the episodic policy (4)\n"
                      "  --embed-layer L     its embedding: residual stream after L layers (2)\n"
                      "  --episode-scores max|mean-logit  how an episode's representative queries score\n"
                      "                      slots: max attention (EpiCache) or their mean logit (mean-logit)\n"
                      "  --questions N       questions per conversation (64)\n"
                      "  --selection S,..    uniform (same count per KV head) and/or headwise\n"
                      "                      (top-k over a layer's flattened (head, slot) scores) (uniform,headwise)\n"
                      "  --block N           block-wise prefill block, tokens (512)\n"
                      "  --layer-budgets calibrated|uniform  per-layer budgets from measured key\n"
                      "                      sensitivity (EpiCache, alpha 2, floor M/4), or equal (calibrated)\n"
                      "  --locomo N          LoCoMo-shaped conversations (2; 0 for none)\n"
                      "  --locomo-tokens N   their length (16384)\n"
                      "  --large-decode on|off  32k-history decode on a TinyLlama-shaped model (on)\n"
                      "  --json PATH         where the table goes as JSON\n");
    return 0;
  }
  const auto flag = [&](const char* name, const char* fallback) { return bench::flag(argc, argv, name, fallback); };
  const std::string json_path = flag("--json", (std::string(MNEMO_BENCH_DIR) + "/fidelity_bench.json").c_str());
  std::vector<int64_t> lengths;
  for (const auto& l : split(flag("--lengths", "4096,16384,32768")))
    if (std::stoll(l) > 0) lengths.push_back(std::stoll(l));  // 0: no synthetic conversations
  Setup s;
  for (const auto& r : split(flag("--ratios", "2,4,6,8,16"))) s.ratios.push_back(std::stod(r));
  s.policies = split(flag("--policies", "streaming,snapkv,h2o,keydiff,patched,episodic"));
  s.selections = split(flag("--selection", "uniform,headwise"));
  for (const auto& sel : s.selections)
    if (sel != "uniform" && sel != "headwise") {
      std::fprintf(stderr, "--selection takes uniform and/or headwise, got '%s'\n", sel.c_str());
      return 2;
    }
  s.block = std::stoll(flag("--block", "512"));
  s.episodic.episodes = size_t(std::stoll(flag("--episodes", "4")));
  s.episodic.embed_layer = std::stoll(flag("--embed-layer", "2"));
  const std::string episode_scores = flag("--episode-scores", "mean-logit");
  if (episode_scores != "max" && episode_scores != "mean-logit") {
    std::fprintf(stderr, "--episode-scores takes max or mean-logit, got '%s'\n", episode_scores.c_str());
    return 2;
  }
  s.episodic.reduce = episode_scores == "max" ? engine::ScoreReduce::Max : engine::ScoreReduce::MeanLogit;
  const int64_t questions = std::stoll(flag("--questions", "64"));
  const int64_t locomo_n = std::stoll(flag("--locomo", "2"));
  const int64_t locomo_tokens = std::stoll(flag("--locomo-tokens", "16384"));
  const bool large = flag("--large-decode", "on") == "on";
  std::printf("load before: %s\n", bench::loadavg().c_str());
  kernels::cpu::set_matmul_precision(kernels::cpu::MatmulPrecision::Exact);

  const fs::path dir = fs::temp_directory_path() / "mnemo-fidelity-testbed";
  engine::RecallTestbedOptions tb;
  engine::generate_recall_testbed(tb, dir);
  const auto model = engine::Model::load(dir);
  s.model = model.get();
  std::optional<memory::compress::LayerBudgetCalibration> calibration;
  if (flag("--layer-budgets", "calibrated") == "calibrated") {
    calibration.emplace(*model);
    s.calibration = &*calibration;
    std::printf("layer sensitivity sigma:");
    for (double x : calibration->sigma()) std::printf(" %.4f", x);
    std::printf(" -> budgets at 1024 per layer:");
    for (int64_t b : calibration->budgets(1024)) std::printf(" %lld", (long long)b);
    std::printf("\n");
  }

  bench::Table table({"conversation", "tokens", "policy", "selection", "compression", "budget_tokens", "recall_pct_of_full",
                      "recall_pct", "peak_kv_mib", "budget_kv_mib", "bound_mib", "peak_within_bound", "prefill_s",
                      "decode_ms_per_token", "routed_to_topic_pct", "held_kv_mib"});
  for (int64_t len : lengths) {
    SyntheticOptions so;
    so.tokens = len, so.topics = tb.topics, so.questions = questions, so.seed = uint64_t(len);
    run_conversation(s, synthetic_conversation(so), table);
  }
  if (locomo_n > 0) {
    const fs::path path = fs::path(MNEMO_SHARED_DIR) / "data/convqa/locomo10.json";
    std::ifstream in(path);
    if (!in) {
      std::printf("LoCoMo: %s not readable; its rows are skipped\n", path.string().c_str());
    } else {
      const auto data = nlohmann::json::parse(in);
      for (int64_t i = 0; i < locomo_n && i < int64_t(data.size()); ++i)
        run_conversation(s, locomo_conversation(data[size_t(i)], tb.topics, locomo_tokens, questions, uint64_t(i + 1)),
                         table);
    }
  }
  std::printf("\n");
  table.print();
  nlohmann::json out = {{"load", bench::loadavg()}, {"rows", table.to_json()}};
  if (large) out["large_decode"] = large_decode_report(32768, 8.0);
  std::printf("load after: %s\n", bench::loadavg().c_str());
  bench::write_json(json_path, out);
  return 0;
}
