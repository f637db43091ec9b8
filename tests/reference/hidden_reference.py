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

import os
import random
import sys
from dataclasses import dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common as G  # noqa: E402
import hf_reference as R  # noqa: E402

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


def make_case(case: Case, mnemo: str, work: str) -> dict:
    model_dir, head = G.generate(mnemo, case, work, FORMAT_VERSION)
    cfg = R.parse_config(model_dir)
    tokens = case_tokens(case.name, case.n_tokens, cfg.vocab)
    means, checks = {}, {}
    prev = None
    for layer in range(1, cfg.layers + 1):
        m = mean_hidden(model_dir, tokens, layer)
        m64 = mean_hidden(model_dir, tokens, layer, torch.float64)
        checks[f"layer{layer}_f32_vs_f64"] = R.rel_err(m, m64)
        if prev is not None:
            # A neighbouring layer's mean must be far outside the bound, or an
            # off-by-one in the layer count could pass.
            checks[f"layer{layer}_vs_layer{layer - 1}"] = R.rel_err(prev, m)
        prev = m
        means[str(layer)] = G.floats(m.to(torch.float32).tolist())
    # The last token alone changes the mean by far more than the bound (a
    # dropped or doubled token, e.g. at a chunk edge, cannot pass).
    checks["drop_last_token_effect"] = R.rel_err(mean_hidden(model_dir, tokens[:-1], cfg.layers), prev)
    if any(w is not None for w in cfg.sliding_window):
        nowin = ResidualReference(model_dir, cfg.layers)
        nowin.cfg.sliding_window = [None] * cfg.layers
        checks["window_effect"] = R.rel_err(nowin.forward(tokens).to(torch.float64).mean(dim=0), prev)
    G.assert_checks(case.name, checks, TOL, effect_factor=10)
    return {
        **head,
        "reference": {"script": "tests/reference/hidden_reference.py", "computation_dtype": "float32",
                      "mean": "float64 over the float32 rows", "torch_version": torch.__version__},
        "tolerance": {"max_rel_err": TOL,
                      "definition": "per layer: max |engine - golden| / max |golden| over the hidden features",
                      "applies_to": "engine in f32 arithmetic throughout (MatmulPrecision::Exact)"},
        "how_to_run": "mean_hidden_state(model, tokens, layer) for each key of mean_by_layer",
        "tokens": tokens,
        "checks": G.rounded(checks),
        "mean_by_layer": means,
    }


def main() -> int:
    return G.write_goldens(__doc__, CASES, make_case, os.path.join(G.REPO, "tests", "golden", "hidden"))


if __name__ == "__main__":
    sys.exit(main())
