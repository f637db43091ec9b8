#!/usr/bin/python3
"""Measures the recall testbed (`mnemo model new --arch recall-testbed`) with the
independent reference, and writes tests/golden/recall_testbed.json.

The weights are never rebuilt here from the recipe (shared/testbeds/recall-model.md):
the model directory written by `mnemo model new` is loaded with hf_reference.py and
only its behaviour is measured:

- recall: a context of N tokens from topic words, topics in episodes, with K unique
  keys each followed by its value; asked "question prefix + key", the argmax of the
  next-token logits must be the value. Margin = value logit - best other logit.
- f32 against f64 at 1k (the f32 reference is what runs at 4k and 16k).
- eviction sensitivity: removing a fact's VALUE slot from layer 1's cache (all heads)
  makes exactly that fact fail; removing its KEY slot does not; removing a random half
  of layer 1's other slots leaves every fact answered (the robust variant).

Run with Debian's interpreter (python3-torch):
    /usr/bin/python3 tests/reference/recall_testbed_reference.py --mnemo build/mnemo [--write-golden]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common as G  # noqa: E402
import hf_reference as hf  # noqa: E402

GENERATOR_ARGS = ["--arch", "recall-testbed", "--topics", "8", "--seed", "0"]
TOPICS = 8
VOCAB = 32000
RESERVED = 64  # ids below carry no topic (recall_testbed.h)
QUESTION_PREFIX = [1, 2, 3, 4, 5, 6, 7, 8]
EPISODE = 64   # tokens per topic episode in the contexts built here
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "recall_testbed.json")


def topic_of(t: int) -> int:
    return -1 if t < RESERVED else (t - RESERVED) % TOPICS


def build_context(n: int, n_facts: int, rng: random.Random) -> tuple[list[int], list[dict]]:
    """Episodes of EPISODE tokens, each of one topic, topics taking turns in rounds
    (every topic once per round, in random order, never twice in a row); facts
    (key, value) of the episode's topic at random even positions; keys and values used
    once each; filler drawn from the episode's topic without any key or value."""
    n_ep = math.ceil(n / EPISODE)
    ep_topic: list[int] = []
    while len(ep_topic) < n_ep:  # rounds of every topic once, in random order
        perm = list(range(TOPICS))
        rng.shuffle(perm)
        if ep_topic and perm[0] == ep_topic[-1]:
            perm[0], perm[-1] = perm[-1], perm[0]
        ep_topic += perm
    pools = {t: list(range(RESERVED + t, VOCAB, TOPICS)) for t in range(TOPICS)}
    for p in pools.values():
        rng.shuffle(p)
    tokens = [-1] * n
    facts = []
    for x in sorted(rng.sample(range(n // 2 - 1), n_facts)):
        pos = 2 * x
        t = ep_topic[pos // EPISODE]
        key, value = pools[t].pop(), pools[t].pop()
        tokens[pos], tokens[pos + 1] = key, value
        facts.append({"key": key, "value": value, "key_pos": pos, "topic": t})
    for i in range(n):
        if tokens[i] < 0:
            pool = pools[ep_topic[i // EPISODE]]  # what is left: never a key or a value
            tokens[i] = pool[rng.randrange(len(pool))]
    return tokens, facts


def prefill(ref: hf.Reference, tokens: list[int], chunk: int = 1024) -> hf.KVCache:
    cache = ref.new_cache()
    for s in range(0, len(tokens), chunk):
        ref.forward(tokens[s:s + chunk], cache)
    return cache


def copy_cache(c: hf.KVCache) -> hf.KVCache:
    # forward() replaces the per-layer tensors (torch.cat), never writes into them.
    return hf.KVCache(k=list(c.k), v=list(c.v), length=c.length)


def forward_evicted(ref: hf.Reference, tokens: list[int], cache: hf.KVCache,
                    evict: dict[int, list[int]]) -> torch.Tensor:
    """Last-position logits of `tokens` appended to `cache`, with the cached slots in
    evict[layer] removed from that layer's attention (all heads), as a KV eviction
    does: the new tokens keep their true positions. Step for step hf.Reference.forward
    otherwise (checked equal to it with nothing evicted); the cache is not modified."""
    cfg = ref.cfg
    past, T = cache.length, len(tokens)
    pos = torch.arange(past, past + T, dtype=torch.int64)
    freqs = pos.to(ref.dtype)[:, None] * ref.inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]
    x = ref.w["model.embed_tokens.weight"][torch.tensor(tokens, dtype=torch.int64)]
    groups = cfg.heads // cfg.kv_heads
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        h = ref._rms_norm(x, ref.w[p + "input_layernorm.weight"])
        q = ref._linear(h, p + "self_attn.q_proj").view(T, cfg.heads, cfg.head_dim).transpose(0, 1)
        k = ref._linear(h, p + "self_attn.k_proj").view(T, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
        v = ref._linear(h, p + "self_attn.v_proj").view(T, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
        q = q * cos + hf.rotate_half(q) * sin
        k = k * cos + hf.rotate_half(k) * sin
        keep = torch.ones(past, dtype=torch.bool)
        keep[list(evict.get(i, []))] = False
        k = torch.cat((cache.k[i][:, keep], k), dim=1)
        v = torch.cat((cache.v[i][:, keep], v), dim=1)
        scores = torch.matmul(q, k.repeat_interleave(groups, dim=0).transpose(1, 2)) * cfg.head_dim ** -0.5
        allowed = torch.cat((torch.ones(T, int(keep.sum()), dtype=torch.bool), causal), dim=1)
        scores = scores.masked_fill(~allowed[None], float("-inf"))
        probs = torch.softmax(scores.to(torch.float32) if ref.dtype != torch.float64 else scores,
                              dim=-1).to(ref.dtype)
        attn = torch.matmul(probs, v.repeat_interleave(groups, dim=0)).transpose(0, 1).reshape(T, -1)
        x = x + ref._linear(attn, p + "self_attn.o_proj")
        h = ref._rms_norm(x, ref.w[p + "post_attention_layernorm.weight"])
        x = x + ref._linear(F.silu(ref._linear(h, p + "mlp.gate_proj")) * ref._linear(h, p + "mlp.up_proj"),
                            p + "mlp.down_proj")
    x = ref._rms_norm(x[-1:], ref.w["model.norm.weight"])
    return F.linear(x, ref.w["lm_head.weight"])[0]


def answer(logits: torch.Tensor, value: int) -> tuple[int, float]:
    """(argmax, margin of the value over the best other token)."""
    others = logits.clone()
    others[value] = float("-inf")
    return int(logits.argmax()), float(logits[value] - others.max())


def ask_all(ref: hf.Reference, cache: hf.KVCache, facts: list[dict]) -> list[tuple[int, float, torch.Tensor]]:
    out = []
    for f in facts:
        row = ref.forward(QUESTION_PREFIX + [f["key"]], copy_cache(cache))[-1]
        out.append(answer(row, f["value"]) + (row,))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnemo", required=True, help="the mnemo binary (writes the model)")
    ap.add_argument("--write-golden", action="store_true", help="(re)write tests/golden/recall_testbed.json")
    ap.add_argument("--no-16k", action="store_true", help="skip the 16k row (the slowest part)")
    ap.add_argument("--keep-model", help="write the model here instead of a temporary directory")
    args = ap.parse_args()
    torch.manual_seed(0)
    t_start = time.time()

    tmp = None
    model = args.keep_model
    if not model:
        tmp = tempfile.TemporaryDirectory()
        model = tmp.name
    t0 = time.time()
    G.run_generator(args.mnemo, GENERATOR_ARGS, model)
    print(f"generated in {time.time() - t0:.1f} s: mnemo model new {' '.join(GENERATOR_ARGS)}")
    ref = hf.Reference(model, torch.float32)

    # --- the golden context (1k, 50 facts), in f32 and f64 -------------------------
    rng = random.Random(1000)
    ctx, facts = build_context(1024, 50, rng)
    t0 = time.time()
    cache = prefill(ref, ctx)
    golden_answers = ask_all(ref, cache, facts)
    print(f"1k context + 50 questions, f32: {time.time() - t0:.1f} s")
    ref64 = hf.Reference(model, torch.float64)
    cache64 = prefill(ref64, ctx)
    ans64 = ask_all(ref64, cache64, facts)
    f32_vs_f64 = max(hf.rel_err(a[2], b[2]) for a, b in zip(golden_answers, ans64))
    margin_diff = max(abs(a[1] - b[1]) for a, b in zip(golden_answers, ans64))
    same_argmax = all(a[0] == b[0] for a, b in zip(golden_answers, ans64))
    print(f"f32 vs f64 at 1k: max rel err {f32_vs_f64:.2e}, max margin diff {margin_diff:.2e}, "
          f"argmaxes {'equal' if same_argmax else 'DIFFER'}")
    assert same_argmax and f32_vs_f64 < 1e-5, "the f32 reference is not good enough to stand for f64"
    del ref64, cache64

    # --- eviction sensitivity at 1k --------------------------------------------------
    # forward_evicted must be the reference when nothing is evicted.
    q0 = QUESTION_PREFIX + [facts[0]["key"]]
    same = torch.equal(forward_evicted(ref, q0, cache, {}), golden_answers[0][2])
    assert same or hf.rel_err(forward_evicted(ref, q0, cache, {}), golden_answers[0][2]) < 1e-6, \
        "forward_evicted differs from hf_reference.forward with nothing evicted"

    def recall_with(evict: dict[int, list[int]]) -> list[bool]:
        return [answer(forward_evicted(ref, QUESTION_PREFIX + [f["key"]], cache, evict), f["value"])[0] == f["value"]
                for f in facts]

    checked = list(range(0, 50, 5))
    value_ok = key_ok = True
    for j in checked:
        ok_v = recall_with({1: [facts[j]["key_pos"] + 1]})
        ok_k = recall_with({1: [facts[j]["key_pos"]]})
        value_ok &= (not ok_v[j]) and all(ok_v[i] for i in range(50) if i != j)
        key_ok &= all(ok_k)
    value_slots = {f["key_pos"] + 1 for f in facts}
    others = [s for s in range(len(ctx)) if s not in value_slots]
    half = sorted(random.Random(7).sample(others, len(others) // 2))
    ok_half = recall_with({1: half})
    eviction = {
        "facts_checked": checked,
        "value_slot_evicted_only_that_fact_fails": value_ok,
        "key_slot_evicted_all_facts_hold": key_ok,
        "half_of_other_slots_evicted_recall": sum(ok_half) / len(ok_half),
    }
    print(f"eviction (layer 1, all heads), {len(checked)} facts: value slot -> only that fact fails: {value_ok}; "
          f"key slot -> all hold: {key_ok}; random half of the other slots -> recall {eviction['half_of_other_slots_evicted_recall']:.0%}")
    assert value_ok and key_ok and ok_half.count(True) == len(ok_half)

    # --- recall table --------------------------------------------------------------------
    rows = [(1024, 50, 3), (4096, 100, 2)] + ([] if args.no_16k else [(16384, 100, 1)])
    table = []
    print("| context tokens | facts x seeds | recall | min margin | mean margin | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, k, seeds in rows:
        t0 = time.time()
        hits, margins = 0, []
        for s in range(seeds):
            c, fs = build_context(n, k, random.Random(n * 10 + s))
            cc = prefill(ref, c)
            for (am, mg, _), f in zip(ask_all(ref, cc, fs), fs):
                hits += am == f["value"]
                margins.append(mg)
            del cc
        secs = time.time() - t0
        table.append({"tokens": n, "facts": k, "seeds": seeds, "recall": hits / (k * seeds),
                      "min_margin": min(margins), "mean_margin": sum(margins) / len(margins)})
        print(f"| {n} | {k} x {seeds} | {hits / (k * seeds):.0%} | {min(margins):.2f} | "
              f"{sum(margins) / len(margins):.2f} | {secs:.0f} |")

    if args.write_golden:
        files = {f: G.sha256(os.path.join(model, f)) for f in ("config.json", "model.safetensors")}
        other = {f: G.sha256(os.path.join(model, f)) for f in ("tokenizer.json", "tokenizer_config.json")}
        tokens = ctx + q0
        golden = {
            "format_version": 1,
            "case": "recall_testbed",
            "generator_args": GENERATOR_ARGS,
            "model_files_sha256": files,
            "other_files_sha256": other,
            # The engine_reference_test contract: one full logits row, the answer to
            # the first question (context + question prefix + key).
            "tokens": tokens,
            "mode": "forward",
            "logits_positions": [len(tokens) - 1],
            "logits": [G.floats(golden_answers[0][2].tolist())],
            "tolerance": {"max_rel_err": 1e-4, "margin_abs": 2e-3},
            "checks": {"reference_f32_vs_f64": f32_vs_f64, "margin_f32_vs_f64": margin_diff},
            # What engine_recall_testbed_test reads: every question asked after `context`.
            "recall": {
                "topics": TOPICS,
                "question_prefix": QUESTION_PREFIX,
                "context": ctx,
                "facts": [{"key": f["key"], "value": f["value"], "key_pos": f["key_pos"],
                           "argmax": a[0], "margin": G.floats(a[1])}
                          for f, a in zip(facts, golden_answers)],
                "eviction": eviction,
                "table": table,
            },
        }
        with open(GOLDEN, "w") as f:
            json.dump(golden, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {os.path.relpath(GOLDEN)}")
    print(f"total {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
