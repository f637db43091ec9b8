#!/usr/bin/python3
"""Writes tests/golden/compact/<case>.json: reference logits for a sequence
whose KV cache is compacted per KV head, unevenly, while it runs.

The engine compacts a layer by keeping, per KV head, a subset of the slots;
heads may keep different counts (the shorter ones get a hole that attention
skips). What that must compute is plain attention in which every token that
comes after a compaction cannot see the evicted (layer, KV head, position)
keys. This script computes exactly that and nothing engine-shaped: one
forward over all tokens with full causal attention, except that query
position q at layer l, KV head h does not see the positions evicted from
(l, h) by every compaction done before q was fed. No slots, no holes, no
re-packing: if the engine's bookkeeping is off, the two disagree.

Weights, RMSNorm, RoPE and the MLP come from hf_reference.py (the independent
transcription of HF Llama); only the attention mask is new, so the layer loop
is written out here with a per-(layer, KV head) mask.

    /usr/bin/python3 tests/reference/masked_reference.py --mnemo build/engine/cli/mnemo

Golden keys beyond tests/reference/README.md's: `schedule` (what the C++ test
does, in order: `forward` tokens[begin:end] as one chunk, or `compact` with
`evict` and `keep` given as token positions, [layer][kv_head]); the rows of
`logits` are the positions in `logits_positions`. `checks.mask_effect` is
how far the logits move when no position is masked (must exceed 100x the
tolerance), `checks.mask_effect_min_per_head` the smallest move when the mask
of just one (layer, head) is dropped: a kernel that ignores any one head's
hole fails the golden.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common as G  # noqa: E402
import hf_reference as R  # noqa: E402

TOLERANCE = 1e-4


@dataclass
class Compaction:
    at: int                            # after tokens[:at] were fed
    evict: dict[tuple[int, int], int]  # (layer, kv_head) -> how many of its present positions to evict
    from_recent: dict[tuple[int, int], int] | None = None  # of which at least this many from the last chunk


@dataclass
class Case:
    name: str
    description: str
    args: list[str]
    feeds: list[int]                   # chunk sizes, fed one after another
    compactions: list[Compaction]


def llama(seed: int) -> list[str]:
    return G.gen_args(hidden=128, layers=3, heads=4, kv_heads=2, intermediate=256, vocab=320, seed=seed)


CASES = [
    Case("compact_once",
         "Llama 3 layers, 4 heads / 2 KV heads (head_dim 32), F32: 48 tokens, one uneven compaction "
         "(layer 0: 20 and 9 evicted, layer 1: none, layer 2: 0 and 30), then a 40-token chunk (GEMM path) "
         "and 3 decode steps (per-token path)",
         llama(61), [48, 40, 1, 1, 1],
         [Compaction(48, {(0, 0): 20, (0, 1): 9, (2, 1): 30})]),
    Case("compact_twice",
         "Llama 3 layers, 4 heads / 2 KV heads, F32: 40 tokens, uneven compaction, a 40-token chunk, a second "
         "uneven compaction of layers that have holes (evicting appended positions too), a 36-token chunk and "
         "3 decode steps",
         llama(62), [40, 40, 36, 1, 1, 1],
         [Compaction(40, {(0, 0): 12, (0, 1): 4, (1, 1): 15}),
          Compaction(80, {(0, 0): 10, (0, 1): 25, (1, 0): 5, (2, 0): 8},
                     from_recent={(0, 0): 4, (0, 1): 10, (1, 0): 5, (2, 0): 3})]),
]


def case_tokens(name: str, n: int, vocab: int) -> list[int]:
    rng = random.Random(name)
    toks = [rng.randrange(vocab) for _ in range(n)]
    toks[1], toks[2] = vocab - 1, 0
    return toks


def plan_evictions(case: Case, layers: int, kv_heads: int) -> list[list[list[list[int]]]]:
    """Per compaction, [layer][kv_head] sorted positions evicted by it (seeded by the case name)."""
    rng = random.Random(case.name + "/evict")
    gone = {(l, h): set() for l in range(layers) for h in range(kv_heads)}
    out = []
    prev_at = 0
    for c in case.compactions:
        this = [[[] for _ in range(kv_heads)] for _ in range(layers)]
        for (l, h), n in sorted(c.evict.items()):
            present = [p for p in range(c.at) if p not in gone[(l, h)]]
            recent = [p for p in present if p >= prev_at] if c.from_recent else []
            k_recent = (c.from_recent or {}).get((l, h), 0)
            pick = set(rng.sample(recent, k_recent)) if k_recent else set()
            rest = [p for p in present if p not in pick]
            pick |= set(rng.sample(rest, n - len(pick)))
            this[l][h] = sorted(pick)
            gone[(l, h)] |= pick
        out.append(this)
        prev_at = c.at
    return out


def hidden_masks(case: Case, evictions, T: int, layers: int, kv_heads: int,
                 drop: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """Per layer, bool [kv_heads, T, T]: True where query q must not see key k
    because k was evicted from that head before q was fed. `drop` leaves one
    (layer, head) unmasked (for the sensitivity checks)."""
    masks = [torch.zeros(kv_heads, T, T, dtype=torch.bool) for _ in range(layers)]
    for c, ev in zip(case.compactions, evictions):
        for l in range(layers):
            for h in range(kv_heads):
                if (l, h) == drop or not ev[l][h]:
                    continue
                masks[l][h, c.at:, torch.tensor(ev[l][h])] = True
    return masks


def masked_forward(ref: R.Reference, tokens: list[int], hidden: list[torch.Tensor]) -> torch.Tensor:
    """hf_reference.Reference.forward (no cache) with keys hidden per (layer, KV head, query)."""
    cfg = ref.cfg
    T = len(tokens)
    pos = torch.arange(T, dtype=torch.int64)
    freqs = pos.to(ref.dtype)[:, None] * ref.inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]
    x = ref.w["model.embed_tokens.weight"][torch.tensor(tokens, dtype=torch.int64)]
    groups = cfg.heads // cfg.kv_heads
    scale = cfg.head_dim ** -0.5
    causal = pos[None, :] <= pos[:, None]  # [q, k]
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        h = ref._rms_norm(x, ref.w[p + "input_layernorm.weight"])
        q = ref._linear(h, p + "self_attn.q_proj").view(T, cfg.heads, cfg.head_dim).transpose(0, 1)
        k = ref._linear(h, p + "self_attn.k_proj").view(T, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
        v = ref._linear(h, p + "self_attn.v_proj").view(T, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
        q = q * cos + R.rotate_half(q) * sin
        k = k * cos + R.rotate_half(k) * sin
        k_rep = k.repeat_interleave(groups, dim=0)
        v_rep = v.repeat_interleave(groups, dim=0)
        scores = torch.matmul(q, k_rep.transpose(1, 2)) * scale  # [heads, T, T]
        allowed = causal[None] & ~hidden[i].repeat_interleave(groups, dim=0)
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = torch.softmax(scores.to(torch.float32) if ref.dtype != torch.float64 else scores,
                              dim=-1).to(ref.dtype)
        attn = torch.matmul(probs, v_rep).transpose(0, 1).reshape(T, cfg.heads * cfg.head_dim)
        x = x + ref._linear(attn, p + "self_attn.o_proj")
        h = ref._rms_norm(x, ref.w[p + "post_attention_layernorm.weight"])
        x = x + ref._linear(F.silu(ref._linear(h, p + "mlp.gate_proj")) * ref._linear(h, p + "mlp.up_proj"),
                            p + "mlp.down_proj")
    x = ref._rms_norm(x, ref.w["model.norm.weight"])
    return F.linear(x, ref.w["lm_head.weight"])


def stored_positions(feeds: list[int]) -> list[int]:
    """Rows kept in the golden: of each chunk its first, every 8th and last position; every decode step."""
    out, begin = [], 0
    for n in feeds:
        out += sorted({begin, *range(begin, begin + n, 8), begin + n - 1})
        begin += n
    return out


def make_case(case: Case, mnemo: str, work: str) -> dict:
    model_dir, head = G.generate(mnemo, case, work)
    ref = R.Reference(model_dir)
    ref64 = R.Reference(model_dir, torch.float64)
    cfg = ref.cfg
    T = sum(case.feeds)
    tokens = case_tokens(case.name, T, cfg.vocab)
    evictions = plan_evictions(case, cfg.layers, cfg.kv_heads)
    masks = hidden_masks(case, evictions, T, cfg.layers, cfg.kv_heads)
    rows = stored_positions(case.feeds)
    logits = masked_forward(ref, tokens, masks)[rows]

    checks: dict[str, float] = {}
    checks["reference_f32_vs_f64"] = R.max_row_rel_err(logits, masked_forward(ref64, tokens, masks)[rows])
    # The loop above, without masks, is hf_reference's forward.
    none = [torch.zeros_like(m) for m in masks]
    checks["unmasked_vs_hf_reference"] = R.max_row_rel_err(masked_forward(ref, tokens, none), ref.forward(tokens))
    unmasked = ref.forward(tokens)[rows]
    compacted_rows = [i for i, p in enumerate(rows) if p >= case.compactions[0].at]
    checks["mask_effect"] = R.max_row_rel_err(unmasked[compacted_rows], logits[compacted_rows])
    checks["mask_effect_min_row"] = min(R.rel_err(unmasked[i], logits[i]) for i in compacted_rows)
    per_head = []
    for l in range(cfg.layers):
        for h in range(cfg.kv_heads):
            if any(ev[l][h] for ev in evictions):
                dropped = masked_forward(ref, tokens, hidden_masks(case, evictions, T, cfg.layers, cfg.kv_heads, (l, h)))
                per_head.append(R.max_row_rel_err(dropped[rows], logits))
    checks["mask_effect_min_per_head"] = min(per_head)
    G.assert_checks(case.name, checks, TOLERANCE, agreements=("f32_vs_f64", "unmasked_vs_hf_reference"),
                    informational=("mask_effect_min_row",))

    for c in case.compactions:
        assert c.at in [sum(case.feeds[:i]) for i in range(1, len(case.feeds))], c.at
    schedule, begin = [], 0
    gone = {(l, h): set() for l in range(cfg.layers) for h in range(cfg.kv_heads)}
    at = {c.at: ev for c, ev in zip(case.compactions, evictions)}
    for n in case.feeds:
        if begin in at:
            ev = at[begin]
            for (l, h), g in gone.items():
                g |= set(ev[l][h])
            keep = [[[p for p in range(begin) if p not in gone[(l, h)]] for h in range(cfg.kv_heads)]
                    for l in range(cfg.layers)]
            schedule.append({"op": "compact", "evict": ev, "keep": keep})
        schedule.append({"op": "forward", "begin": begin, "end": begin + n})
        begin += n
    return {
        **head,
        "config": G.model_config(model_dir),
        "weights_dtype": sorted(set(ref.weight_dtypes.values())),
        "reference": {
            "script": "tests/reference/masked_reference.py (layer loop over hf_reference.py's weights and ops)",
            "computation_dtype": "float32",
            "softmax_dtype": "float32",
            "torch_version": torch.__version__,
        },
        "tolerance": {
            "max_rel_err": TOLERANCE,
            "applies_to": "engine in f32 arithmetic throughout (MatmulPrecision::Exact)",
            "rel_err_definition": "per logits row r: max_i |engine[r][i] - golden[r][i]| / max_i |golden[r][i]|; "
                                  "the case passes when the largest over rows is <= max_rel_err",
        },
        "mode": "compacted",
        "how_to_run": ("walk `schedule`: `forward` appends tokens[begin:end] to the paged sequence and runs them "
                       "as one chunk; `compact` compacts each layer with an eviction, keeping per KV head the "
                       "slots that hold the positions in keep[layer][head]; compare the rows of the positions "
                       "in logits_positions"),
        "tokens": tokens,
        "schedule": schedule,
        "logits_positions": rows,
        "checks": G.rounded(checks),
        "logits": G.rows_json(logits),
    }


def main() -> int:
    return G.write_goldens(__doc__, CASES, make_case, os.path.join(G.REPO, "tests", "golden", "compact"),
                           rows_key="logits")


if __name__ == "__main__":
    sys.exit(main())
