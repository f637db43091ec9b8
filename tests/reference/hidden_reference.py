#!/usr/bin/python3
"""Reference for mean-pooled hidden states (engine/model/hidden_states.h).

mean_hidden(tokens, L): the tokens run through the first L decoder layers in
one unchunked forward (no final norm, no LM head), and the residual stream is
averaged over the tokens.  The layers themselves are hf_reference.Reference's
forward: a subclass runs only L layers, makes the final norm the identity and
the LM head an identity matrix, so forward() returns the residual stream
(x @ I^T is exact in floating point: every product but one is a zero).

    /usr/bin/python3 tests/reference/hidden_reference.py --mnemo build/engine/cli/mnemo

writes tests/golden/hidden/<case>.json (a subdirectory: the logits goldens'
readers take every *.json directly under tests/golden/).  The engine chunks
long inputs (512 tokens per forward); the long cases here are one forward,
so they check that chunking does not change the mean.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as R  # noqa: E402
import make_golden as G  # noqa: E402

FORMAT_VERSION = 1
# Per stored mean: max|engine - golden| / max|golden| (the logits goldens' measure and bound).
TOL = 1e-4


class ResidualReference(R.Reference):
    """Reference whose forward() returns the residual stream after `layers` layers."""

    def __init__(self, model_dir: str, layers: int, compute: torch.dtype = torch.float32):
        super().__init__(model_dir, compute)  # loads and checks every layer's tensors
        if not 1 <= layers <= self.cfg.layers:
            raise R.ReferenceError(f"layer {layers} outside 1..{self.cfg.layers}")
        self.cfg.layers = layers
        self.w["lm_head.weight"] = torch.eye(self.cfg.hidden, dtype=compute)

    def _rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if weight is self.w["model.norm.weight"]:
            return x  # the final norm: the residual stream is what is wanted
        return super()._rms_norm(x, weight)


def mean_hidden(model_dir: str, tokens: list[int], layer: int, compute: torch.dtype = torch.float32) -> torch.Tensor:
    ref = ResidualReference(model_dir, layer, compute)
    x = ref.forward(tokens)  # [T, hidden], one forward over all tokens
    return x.to(torch.float64).mean(dim=0)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    return float((a64 - b64).abs().max() / b64.abs().max())


@dataclass
class Case:
    name: str
    description: str
    args: list[str]
    n_tokens: int


def gen(arch: str, seed: int, extra=()) -> list[str]:
    return G.gen_args(arch=arch, hidden=128, layers=3, heads=4, kv_heads=2, intermediate=256, vocab=320,
                      seed=seed, extra=extra)


CASES = [
    Case("hidden_llama", "Llama GQA 4/2, 3 layers, F32, 40 tokens (GEMM path), every layer",
         gen("llama", 71), 40),
    Case("hidden_qwen2_short", "Qwen2 (q/k/v biases), 9 tokens (GEMV path), every layer",
         gen("qwen2", 72), 9),
    Case("hidden_llama_long", "Llama, 1100 tokens: the engine's three chunks (512, 512, 76) against one "
         "unchunked forward", gen("llama", 73), 1100),
    Case("hidden_mistral_window", "Mistral, sliding window 100 over 700 tokens: the window crosses the "
         "engine's chunk boundary at 512", gen("mistral", 74, ["--sliding-window", "100"]), 700),
]


def case_tokens(name: str, n: int, vocab: int) -> list[int]:
    rng = random.Random("hidden/" + name)
    toks = [rng.randrange(vocab) for _ in range(n)]
    if n >= 3:
        toks[1], toks[2] = vocab - 1, 0  # off-by-one embedding rows
    return toks


def floats(t: torch.Tensor) -> list[float]:
    return [float(f"{v:.9g}") for v in t.to(torch.float32).tolist()]


def make_case(case: Case, mnemo: str, work: str) -> dict:
    model_dir = os.path.join(work, case.name)
    G.run_generator(mnemo, case.args, model_dir)
    weight_hashes, other_hashes = G.hash_model(model_dir)
    cfg = R.parse_config(model_dir)
    tokens = case_tokens(case.name, case.n_tokens, cfg.vocab)
    means, checks = {}, {}
    prev = None
    for layer in range(1, cfg.layers + 1):
        m = mean_hidden(model_dir, tokens, layer)
        m64 = mean_hidden(model_dir, tokens, layer, torch.float64)
        checks[f"layer{layer}_f32_vs_f64"] = rel_err(m, m64)
        if prev is not None:
            # A neighbouring layer's mean must be far outside the bound, or an
            # off-by-one in the layer count could pass.
            checks[f"layer{layer}_vs_layer{layer - 1}"] = rel_err(prev, m)
        prev = m
        means[str(layer)] = floats(m)
    # The last token alone changes the mean by far more than the bound (a
    # dropped or doubled token, e.g. at a chunk edge, cannot pass).
    checks["drop_last_token_effect"] = rel_err(mean_hidden(model_dir, tokens[:-1], cfg.layers), prev)
    if any(w is not None for w in cfg.sliding_window):
        nowin = ResidualReference(model_dir, cfg.layers)
        nowin.cfg.sliding_window = [None] * cfg.layers
        checks["window_effect"] = rel_err(nowin.forward(tokens).to(torch.float64).mean(dim=0), prev)
    for k, v in checks.items():
        if k.endswith("f32_vs_f64"):
            assert v < TOL / 10, (case.name, k, v)
        else:
            assert v > 10 * TOL, (case.name, k, v)
    return {
        "format_version": FORMAT_VERSION,
        "case": case.name,
        "description": case.description,
        "generator_args": case.args,
        "generator_command": "mnemo model new " + " ".join(case.args) + " --out DIR",
        "model_files_sha256": weight_hashes,
        "other_files_sha256": other_hashes,
        "reference": {"script": "tests/reference/hidden_reference.py", "computation_dtype": "float32",
                      "mean": "float64 over the float32 rows", "torch_version": torch.__version__},
        "tolerance": {"max_rel_err": TOL,
                      "definition": "per layer: max |engine - golden| / max |golden| over the hidden features",
                      "applies_to": "engine in f32 arithmetic throughout (MatmulPrecision::Exact)"},
        "how_to_run": "mean_hidden_state(model, tokens, layer) for each key of mean_by_layer",
        "tokens": tokens,
        "checks": {k: float(f"{v:.3g}") for k, v in checks.items()},
        "mean_by_layer": means,
    }


def format_golden(golden: dict) -> str:
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in golden.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnemo", required=True, help="path to the mnemo binary (its `model new` generator)")
    ap.add_argument("--out", default=os.path.join(G.REPO, "tests", "golden", "hidden"))
    ap.add_argument("--only", default="", help="comma-separated case names")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    only = {n for n in args.only.split(",") if n}
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mnemo-hidden-") as work:
        for case in CASES:
            if only and case.name not in only:
                continue
            golden = make_case(case, args.mnemo, work)
            path = os.path.join(args.out, case.name + ".json")
            with open(path, "w") as f:
                f.write(format_golden(golden))
            print(f"{case.name:24s} {os.path.getsize(path) // 1024:4d} KB  " +
                  " ".join(f"{k}={v:.2e}" for k, v in golden["checks"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
