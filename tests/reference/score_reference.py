#!/usr/bin/python3
"""Reference for the KV scoring pass and the layer key similarity.

What it computes (engine/model/attention_scores.h is the C++ side):

* slot scores: a history is prefilled (hf_reference.Reference.forward with a
  cache: keys after RoPE); optionally some positions are evicted per (layer,
  KV head), the survivors of each head keeping their order (a head keeping
  fewer than the layer's most has a hole at the end). Then the query tokens
  run through every layer at positions len(history).., attending to the
  surviving cached keys of their head and causally to each other. For each
  query head the softmax of its logits over the cached slots alone (own keys
  excluded, holes excluded) is the score; scores are reduced (max or sum) over
  the query positions and the query heads of the KV group.  A model's sliding
  window (Mistral) limits both, as long as nothing was evicted.
* layer key similarity: keys of every layer for a text with full causal
  attention and with every layer restricted to the first `sinks` tokens plus
  the last `window` (query p sees key j iff j < sinks or p - j < window);
  per layer the mean cosine (over tokens and KV heads) of the post-RoPE keys.

Weights, norms, projections, RoPE and the MLP come from hf_reference.py; the
attention with these masks is written here, in plain tensor code.

    /usr/bin/python3 tests/reference/score_reference.py --mnemo build/engine/cli/mnemo

writes tests/golden/scores/<case>.json (a subdirectory: the logits goldens'
readers take every *.json directly under tests/golden/).
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common as G  # noqa: E402
import hf_reference as R  # noqa: E402

FORMAT_VERSION = 1
SCORE_TOL = 1e-4   # per (layer, kv head) row: max|engine - golden| / max|golden|
SIGMA_TOL = 1e-5   # absolute, on a mean cosine


def rope(ref: R.Reference, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [heads, T, hd] rotated at positions [T], as hf_reference does."""
    freqs = positions.to(ref.dtype)[:, None] * ref.inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos()[None] + R.rotate_half(x) * emb.sin()[None]


def project(ref: R.Reference, x: torch.Tensor, layer: int, positions: torch.Tensor):
    """q [heads, T, hd], k, v [kv_heads, T, hd] of one layer, q and k rotated."""
    cfg, p = ref.cfg, f"model.layers.{layer}."
    T = x.shape[0]
    h = ref._rms_norm(x, ref.w[p + "input_layernorm.weight"])
    q = ref._linear(h, p + "self_attn.q_proj").view(T, cfg.heads, cfg.head_dim).transpose(0, 1)
    k = ref._linear(h, p + "self_attn.k_proj").view(T, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
    v = ref._linear(h, p + "self_attn.v_proj").view(T, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
    return rope(ref, q, positions), rope(ref, k, positions), v


def finish_layer(ref: R.Reference, x: torch.Tensor, layer: int, attn: torch.Tensor) -> torch.Tensor:
    """Residual, o_proj and MLP after attention output attn [heads, T, hd]."""
    cfg, p = ref.cfg, f"model.layers.{layer}."
    T = x.shape[0]
    x = x + ref._linear(attn.transpose(0, 1).reshape(T, cfg.heads * cfg.head_dim), p + "self_attn.o_proj")
    h = ref._rms_norm(x, ref.w[p + "post_attention_layernorm.weight"])
    return x + ref._linear(F.silu(ref._linear(h, p + "mlp.gate_proj")) * ref._linear(h, p + "mlp.up_proj"),
                           p + "mlp.down_proj")


def softmax(logits: torch.Tensor, ref: R.Reference) -> torch.Tensor:
    """softmax in float32 (float64 in the f64 run); an all-masked row gives zeros."""
    s = torch.softmax(logits.to(torch.float32) if ref.dtype != torch.float64 else logits, dim=-1)
    return torch.nan_to_num(s, nan=0.0).to(ref.dtype)


def embed(ref: R.Reference, tokens: list[int]) -> torch.Tensor:
    if any(t < 0 or t >= ref.cfg.vocab for t in tokens):
        raise R.ReferenceError(f"token id out of range [0, {ref.cfg.vocab})")
    return ref.w["model.embed_tokens.weight"][torch.tensor(tokens, dtype=torch.int64)]


# ---------------------------------------------------------------------------
# Slot scores
# ---------------------------------------------------------------------------

def slot_scores(ref: R.Reference, history: list[int], queries: list[int],
                evicted: dict[tuple[int, int], set[int]] | None = None,
                include_own_in_score: bool = False) -> dict[str, list]:
    """{"max": scores, "sum": scores, "mean_logit": scores}, scores[layer][kv_head][slot] (-inf in holes).

    mean_logit: per slot the mean over (query head of the group, query) of the
    scaled logit q.k/sqrt(d), a masked (out-of-window) pair counting as 0,
    then a softmax over the head's slots.

    evicted[(layer, kv_head)]: history positions that head no longer holds.
    include_own_in_score: a deliberately wrong variant (the score softmax also
    covering the queries' own keys), to show the golden tells them apart.
    """
    cfg = ref.cfg
    evicted = evicted or {}
    cache = ref.new_cache()
    ref.forward(history, cache)  # hf_reference's own prefill: keys after RoPE
    N, m, g = len(history), len(queries), cfg.heads // cfg.kv_heads
    scale = cfg.head_dim ** -0.5
    qpos = torch.arange(N, N + m, dtype=torch.int64)
    compacted = any(evicted.values())
    x = embed(ref, queries)
    out = {"max": [], "sum": [], "mean_logit": []}
    for layer in range(cfg.layers):
        q, k_own, v_own = project(ref, x, layer, qpos)
        # Each head's surviving positions, in order; shorter heads end in a hole.
        kept = [[j for j in range(N) if j not in evicted.get((layer, h), set())] for h in range(cfg.kv_heads)]
        slots = max(len(s) for s in kept)
        win = cfg.sliding_window[layer]
        layer_max, layer_sum, layer_mean = [], [], []
        attn = torch.zeros(cfg.heads, m, cfg.head_dim, dtype=ref.dtype)
        for h in range(cfg.kv_heads):
            idx = torch.tensor(kept[h], dtype=torch.int64)
            kc, vc = cache.k[layer][h, idx], cache.v[layer][h, idx]          # [n_h, hd]
            visible = torch.ones(m, len(kept[h]), dtype=torch.bool)
            if win is not None and not compacted:
                visible &= (qpos[:, None] - idx[None, :]) < win
            own_visible = torch.arange(m)[None, :] <= torch.arange(m)[:, None]
            if win is not None and not compacted:
                own_visible &= (torch.arange(m)[:, None] - torch.arange(m)[None, :]) < win
            qh = q[h * g:(h + 1) * g]                                         # [g, m, hd]
            cached_logits = (qh @ kc.T * scale).masked_fill(~visible[None], float("-inf"))
            own_logits = (qh @ k_own[h].T * scale).masked_fill(~own_visible[None], float("-inf"))
            if include_own_in_score:
                score = softmax(torch.cat((cached_logits, own_logits), -1), ref)[..., :len(kept[h])]
            else:
                score = softmax(cached_logits, ref)                          # [g, m, n_h]
            probs = softmax(torch.cat((cached_logits, own_logits), -1), ref)
            attn[h * g:(h + 1) * g] = probs @ torch.cat((vc, v_own[h]), 0)
            hole = [float("-inf")] * (slots - len(kept[h]))
            layer_max.append(score.amax(dim=(0, 1)).tolist() + hole)
            layer_sum.append(score.sum(dim=(0, 1)).tolist() + hole)
            mean = torch.nan_to_num(cached_logits, neginf=0.0).sum(dim=(0, 1)) / (g * m)
            layer_mean.append(softmax(mean, ref).tolist() + hole)
        out["max"].append(layer_max)
        out["sum"].append(layer_sum)
        out["mean_logit"].append(layer_mean)
        x = finish_layer(ref, x, layer, attn)
    return out


# ---------------------------------------------------------------------------
# Layer key similarity
# ---------------------------------------------------------------------------

def layer_keys(ref: R.Reference, text: list[int], sinks: int | None, window: int | None) -> list[torch.Tensor]:
    """Post-RoPE keys [kv_heads, T, hd] per layer; sinks/window None = full causal."""
    cfg = ref.cfg
    T = len(text)
    pos = torch.arange(T, dtype=torch.int64)
    visible = pos[None, :] <= pos[:, None]
    if sinks is not None:
        visible &= (pos[None, :] < sinks) | ((pos[:, None] - pos[None, :]) < window)
    g, scale = cfg.heads // cfg.kv_heads, cfg.head_dim ** -0.5
    x = embed(ref, text)
    keys = []
    for layer in range(cfg.layers):
        q, k, v = project(ref, x, layer, pos)
        keys.append(k)
        vis = visible.clone()
        if cfg.sliding_window[layer] is not None:
            vis &= (pos[:, None] - pos[None, :]) < cfg.sliding_window[layer]
        logits = (q @ k.repeat_interleave(g, 0).transpose(1, 2) * scale).masked_fill(~vis[None], float("-inf"))
        x = finish_layer(ref, x, layer, softmax(logits, ref) @ v.repeat_interleave(g, 0))
    return keys


def layer_key_similarity(ref: R.Reference, text: list[int], sinks: int, window: int) -> list[float]:
    full, limited = layer_keys(ref, text, None, None), layer_keys(ref, text, sinks, window)
    return [float(F.cosine_similarity(a.to(torch.float64), b.to(torch.float64), dim=-1, eps=0).mean())
            for a, b in zip(full, limited)]


# ---------------------------------------------------------------------------
# Goldens
# ---------------------------------------------------------------------------

@dataclass
class Run:
    name: str
    n_queries: int
    # layer -> kept count, one for every head or one per head (uneven counts leave holes); heads
    # keep different random subsets. Empty: nothing evicted.
    keep: dict[int, int | list[int]] = field(default_factory=dict)


@dataclass
class Case:
    name: str
    description: str
    args: list[str]
    history: int
    runs: list[Run]
    text: int
    sinks: int
    window: int


def gen(arch: str, seed: int, extra=()) -> list[str]:
    return G.gen_args(arch=arch, hidden=128, layers=3, heads=4, kv_heads=2, intermediate=256, vocab=320,
                      seed=seed, extra=extra)


CASES = [
    Case("scores_llama", "Llama GQA 4/2, 3 layers: 70-token history (partial last block); 1, 6, 20 and 40 "
         "queries (GEMV and GEMM paths); layers 0 and 2 compacted to 37 slots per head, heads keeping different "
         "slots; uneven per-head counts (holes, scored -inf and unread by the queries' forward)",
         gen("llama", 61), 70,
         [Run("one_query", 1), Run("six_queries", 6), Run("compacted_20_queries", 20, {0: 37, 2: 37}),
          Run("holes_7_queries", 7, {1: [41, 26]}), Run("holes_40_queries", 40, {0: [19, 33], 2: [50, 12]})],
         text=60, sinks=4, window=8),
    Case("scores_qwen2", "Qwen2 (q/k/v biases): 45-token history, 9 queries; layer 1 compacted to 20 slots",
         gen("qwen2", 62), 45, [Run("nine_queries", 9), Run("compacted_9_queries", 9, {1: 20})],
         text=40, sinks=2, window=6),
    Case("scores_mistral_window", "Mistral, sliding window 24 over a 50-token history: old slots score 0, "
         "the window also limits the queries' forward", gen("mistral", 63, ["--sliding-window", "24"]), 50,
         [Run("twelve_queries", 12)], text=40, sinks=3, window=5),
]


def case_rng(name: str) -> random.Random:
    return random.Random("scores/" + name)


def tokens_for(rng: random.Random, n: int, vocab: int) -> list[int]:
    toks = [rng.randrange(vocab) for _ in range(n)]
    if n >= 3:
        toks[1], toks[2] = vocab - 1, 0
    return toks


def keep_lists(rng: random.Random, n: int, count: int | list[int], heads: int) -> list[list[int]]:
    counts = count if isinstance(count, list) else [count] * heads
    assert len(counts) == heads
    return [sorted(rng.sample(range(n), c)) for c in counts]


def rel_err(a: list, b: list) -> float:
    """Worst over (layer, head) of max|a-b| / max|b| over finite slots; -inf must match."""
    worst = 0.0
    for la, lb in zip(a, b):
        for ra, rb in zip(la, lb):
            ta, tb = torch.tensor(ra, dtype=torch.float64), torch.tensor(rb, dtype=torch.float64)
            assert torch.equal(torch.isinf(ta), torch.isinf(tb))
            fin = ~torch.isinf(tb)
            if fin.any():
                worst = max(worst, float((ta[fin] - tb[fin]).abs().max() / tb[fin].abs().max()))
    return worst


def make_case(case: Case, mnemo: str, work: str) -> dict:
    model_dir, head = G.generate(mnemo, case, work, FORMAT_VERSION)
    ref, ref64 = R.Reference(model_dir), R.Reference(model_dir, torch.float64)
    cfg = ref.cfg
    rng = case_rng(case.name)
    history = tokens_for(rng, case.history, cfg.vocab)
    checks: dict[str, float] = {}
    runs = []
    for run in case.runs:
        queries = tokens_for(rng, run.n_queries, cfg.vocab)
        keep = {layer: keep_lists(rng, case.history, count, cfg.kv_heads) for layer, count in run.keep.items()}
        evicted = {(layer, h): set(range(case.history)) - set(kl[h])
                   for layer, kl in keep.items() for h in range(cfg.kv_heads)}
        s = slot_scores(ref, history, queries, evicted)
        s64 = slot_scores(ref64, history, queries, evicted)
        wrong = slot_scores(ref, history, queries, evicted, include_own_in_score=True)
        for red in ("max", "sum", "mean_logit"):
            checks[f"{run.name}_{red}_f32_vs_f64"] = rel_err(s[red], s64[red])
        checks[f"{run.name}_own_keys_in_softmax_effect"] = rel_err(wrong["max"], s["max"])
        if keep:
            # The same slots scored with nothing evicted before: eviction must
            # change the deeper layers' scores (their queries saw fewer keys).
            full = slot_scores(ref, history, queries)
            l_last = cfg.layers - 1
            moved = 0.0
            for h in range(cfg.kv_heads):
                kept = keep[l_last][h] if l_last in keep else list(range(case.history))
                a = torch.tensor(s["max"][l_last][h][:len(kept)], dtype=torch.float64)
                b = torch.tensor([full["max"][l_last][h][j] for j in kept], dtype=torch.float64)
                moved = max(moved, float((a - b).abs().max() / b.abs().max()))
            checks[f"{run.name}_eviction_effect_last_layer"] = moved
        if any(win is not None for win in cfg.sliding_window):
            # The model's window must matter: the same run with it switched off.
            nowin = R.Reference(model_dir)
            nowin.cfg.sliding_window = [None] * cfg.layers
            checks[f"{run.name}_window_effect"] = rel_err(slot_scores(nowin, history, queries, evicted)["max"],
                                                          s["max"])
        runs.append({"name": run.name, "queries": queries,
                     "keep": {str(layer): kl for layer, kl in keep.items()},
                     "scores_max": G.floats(s["max"]), "scores_sum": G.floats(s["sum"]),
                     "scores_mean_logit": G.floats(s["mean_logit"])})
    text = tokens_for(rng, case.text, cfg.vocab)
    sigma = layer_key_similarity(ref, text, case.sinks, case.window)
    sigma64 = layer_key_similarity(ref64, text, case.sinks, case.window)
    checks["sigma_f32_vs_f64"] = max(abs(a - b) for a, b in zip(sigma, sigma64))
    checks["sigma_min_deviation_from_1_beyond_layer_0"] = 1 - max(sigma[1:])
    G.assert_checks(case.name, checks, lambda k: SIGMA_TOL if k.startswith("sigma") else SCORE_TOL)
    assert abs(sigma[0] - 1) < SIGMA_TOL, sigma
    return {
        **head,
        "config": G.model_config(model_dir),
        "reference": {"script": "tests/reference/score_reference.py", "computation_dtype": "float32",
                      "torch_version": torch.__version__},
        "tolerance": {
            "scores_max_rel_err": SCORE_TOL,
            "scores_rel_err_definition": "per (layer, kv head): max over finite slots of |engine - golden| / "
                                         "max |golden|; -inf (hole) slots must be -inf in both",
            "sigma_max_abs_err": SIGMA_TOL,
            "applies_to": "engine in f32 arithmetic throughout (MatmulPrecision::Exact)",
        },
        "how_to_run": "prefill history into a paged sequence; for each run with keep, compact those layers "
                      "(keep[layer][kv_head] = slots kept); score_slots(queries) with Max, Sum and MeanLogit; "
                      "runs share nothing (fresh sequence each); layer_key_similarity(text, sinks, window)",
        "history": history,
        "checks": G.rounded(checks),
        "similarity": {"text": text, "sinks": case.sinks, "window": case.window, "sigma": G.floats(sigma)},
        "runs": runs,
    }


def main() -> int:
    return G.write_goldens(__doc__, CASES, make_case, os.path.join(G.REPO, "tests", "golden", "scores"),
                           rows_key="runs")


if __name__ == "__main__":
    sys.exit(main())
