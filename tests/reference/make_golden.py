#!/usr/bin/python3
"""Writes tests/golden/<case>.json: reference logits for small generated models.

Each case generates a random model with the project's own generator
(`mnemo model new ...`), runs the independent reference (hf_reference.py) on
it, and records what a C++ test needs to repeat the comparison without any
committed weights: the generator arguments, the sha256 of each generated file
(so "the generator changed" is told apart from "the forward is wrong"), the
token ids and the expected logits.

    /usr/bin/python3 tests/reference/make_golden.py --mnemo build/engine/cli/mnemo

See tests/reference/README.md for the format, the tolerances and why.
"""

from __future__ import annotations

import math
import os
import random
import sys
from dataclasses import dataclass, field

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common as G  # noqa: E402
import hf_reference as R  # noqa: E402

# Bound on max relative error with every engine path in f32 arithmetic
# (kernels::cpu::MatmulPrecision::Exact); see README.md for the derivation.
# The same bound holds for F16/BF16 weights because both sides upcast them
# exactly.
TOLERANCE = {"f32": 1e-4, "f16": 1e-4, "bf16": 1e-4}
# MatmulPrecision::Fast rounds the GEMM input to bf16 for BF16 weights
# (more than 16 tokens): an error of order 2^-8 per projection, a statistical
# bound measured in README.md, and only for BF16 weights.
TOLERANCE_FAST_BF16 = 2e-2

# llama3 rope scaling with a small original context: with the default 8192
# nearly every frequency of a 16-wide head lies in the "keep" band at these
# sequence lengths, so the scaling code would go untested.  With theta 500000
# and original 256 the bands are (low_freq_factor 1, high_freq_factor 4, the
# generator's fixed values): wavelengths < 64 kept (j = 0, 1), 64..256
# interpolated (j = 2), > 256 divided by factor (j = 3..7); no wavelength
# lies within 1% of a band edge, so float rounding cannot move one across.
LLAMA3_FLAGS = ["--rope-scaling", "llama3", "--rope-theta", "500000", "--rope-factor", "8",
                "--rope-original-max", "256"]


@dataclass
class Case:
    name: str
    description: str
    args: list[str]
    n_tokens: int
    store: str = "all"             # "all" positions or only the "last"
    prompt_len: int | None = None  # set: decode case (prefill prompt_len, then one token at a time)
    checks: list[str] = field(default_factory=list)


CASES = [
    Case("llama_f32", "Llama, GQA 4 heads / 2 kv heads, F32", G.gen_args(seed=11), 10),
    Case("llama_f32_gqa8x2", "Llama, GQA 8 heads / 2 kv heads (head_dim 16), F32",
         G.gen_args(hidden=128, heads=8, kv_heads=2, intermediate=256, vocab=384, seed=12), 9),
    Case("llama_f32_mha", "Llama, multi-head attention (kv heads = heads), F32",
         G.gen_args(heads=4, kv_heads=4, seed=13), 9),
    Case("llama_f32_long", "Llama, F32, 160 tokens, last position (RoPE at larger angles, long softmax)",
         G.gen_args(seed=14), 160, store="last"),
    Case("llama_f32_rope_llama3", "Llama, llama3 rope scaling (theta 5e5, original context 256), 48 tokens",
         G.gen_args(seed=15, extra=LLAMA3_FLAGS), 48, store="last", checks=["rope_scaling_effect"]),
    Case("llama_f32_rope_llama3_short", "Llama, llama3 rope scaling, every position",
         G.gen_args(seed=16, extra=LLAMA3_FLAGS), 12, checks=["rope_scaling_effect"]),
    Case("llama_f32_tied", "Llama, tie_word_embeddings (no lm_head.weight)",
         G.gen_args(seed=17, extra=["--tie"]), 9),
    Case("llama_f32_sharded", "Llama, weights in 3 shards with model.safetensors.index.json",
         G.gen_args(seed=18, extra=["--shards", "3"]), 9),
    Case("llama_f32_head_dim", "Llama, head_dim 32 given in config (hidden/heads = 16)",
         G.gen_args(seed=19, extra=["--head-dim", "32"]), 9),
    Case("qwen2_f32", "Qwen2, q/k/v biases, GQA 4/2, F32",
         G.gen_args(arch="qwen2", seed=21), 10, checks=["bias_effect"]),
    Case("mistral_f32", "Mistral, GQA 8/2, F32",
         G.gen_args(arch="mistral", hidden=64, heads=8, kv_heads=2, seed=31), 10),
    # 9 tokens run the engine's GEMV path (<= 16 tokens), 20 its GEMM path.
    Case("llama_bf16", "Llama, BF16 weights, 9 tokens", G.gen_args(dtype="bf16", seed=41), 9),
    Case("llama_bf16_prefill20", "Llama, BF16 weights, 20 tokens (GEMM path)",
         G.gen_args(dtype="bf16", seed=45), 20),
    Case("llama_f16", "Llama, F16 weights, 9 tokens", G.gen_args(dtype="f16", seed=42), 9),
    Case("qwen2_bf16", "Qwen2, BF16 weights and biases, 9 tokens",
         G.gen_args(arch="qwen2", dtype="bf16", seed=43), 9),
    Case("qwen2_bf16_prefill20", "Qwen2, BF16 weights and biases, 20 tokens (GEMM path)",
         G.gen_args(arch="qwen2", dtype="bf16", seed=46), 20),
    Case("qwen2_f16", "Qwen2, F16 weights and biases, 20 tokens (GEMM path)",
         G.gen_args(arch="qwen2", dtype="f16", seed=44), 20),
    Case("llama_f32_decode", "Llama F32: prefill 6 tokens, then decode 8 one at a time",
         G.gen_args(seed=51), 14, prompt_len=6),
    Case("qwen2_bf16_decode", "Qwen2 BF16: prefill 5 tokens, then decode 6 one at a time",
         G.gen_args(arch="qwen2", dtype="bf16", seed=52), 11, prompt_len=5),
    Case("llama_f32_rope_llama3_decode", "Llama llama3 rope, sharded, tied: prefill 20, decode 6",
         G.gen_args(seed=53, extra=LLAMA3_FLAGS + ["--shards", "2", "--tie"]), 26, prompt_len=20),
    Case("llama_bf16_decode", "Llama BF16: prefill 18 tokens (GEMM path), then decode 4 (GEMV path)",
         G.gen_args(dtype="bf16", seed=55), 22, prompt_len=18),
    Case("mistral_f32_window", "Mistral, sliding window 8 over 24 tokens (keys older than the window masked)",
         G.gen_args(arch="mistral", hidden=64, heads=8, kv_heads=2, seed=32, extra=["--sliding-window", "8"]), 24),
    Case("mistral_f32_window_decode", "Mistral, sliding window 6: prefill 4 tokens, then decode 12",
         G.gen_args(arch="mistral", hidden=64, heads=8, kv_heads=2, seed=33, extra=["--sliding-window", "6"]), 16,
         prompt_len=4),
    Case("mistral_f16_decode", "Mistral F16: prefill 1 token, then decode 7",
         G.gen_args(arch="mistral", dtype="f16", seed=54), 8, prompt_len=1),
]


def case_tokens(case: Case, vocab: int) -> list[int]:
    # Seeded by the case name so adding a case never changes another's inputs.
    # The first and last embedding rows are included because off-by-one
    # indexing bugs live there.
    rng = random.Random(case.name)
    toks = [rng.randrange(vocab) for _ in range(case.n_tokens)]
    if case.n_tokens >= 3:
        toks[1], toks[2] = vocab - 1, 0
    return toks


def rope_bands(cfg: R.Config) -> dict[str, int]:
    """How many rotary frequencies fall in each llama3 band; asserts margins."""
    rs = cfg.rope_scaling
    old_len = rs["original_max_position_embeddings"]
    hi_wl, lo_wl = old_len / rs["high_freq_factor"], old_len / rs["low_freq_factor"]
    bands = {"kept": 0, "interpolated": 0, "divided": 0}
    for j in range(cfg.head_dim // 2):
        wl = 2 * math.pi * cfg.rope_theta ** (2 * j / cfg.head_dim)
        assert min(abs(wl / hi_wl - 1), abs(wl / lo_wl - 1)) > 0.01, f"wavelength {wl} at a band edge"
        bands["kept" if wl < hi_wl else "divided" if wl > lo_wl else "interpolated"] += 1
    assert all(bands.values()), f"llama3 case leaves a band empty: {bands}"
    return bands


def sensitivity(model_dir: str, tokens: list[int], reference_logits: torch.Tensor, what: str) -> float:
    """How much the logits move when a feature is switched off in the reference.

    A golden that barely depends on the feature it claims to cover would let
    a wrong implementation of that feature pass; this number shows it does.
    """
    ref = R.Reference(model_dir)
    if what == "rope_scaling_effect":
        ref.cfg.rope_scaling = None
        ref.inv_freq = R.rope_inv_freq(ref.cfg)
    elif what == "bias_effect":
        for name in list(ref.w):
            if name.endswith(".bias"):
                ref.w[name] = torch.zeros_like(ref.w[name])
    else:
        raise ValueError(what)
    return R.max_row_rel_err(ref.forward(tokens), reference_logits)


def make_case(case: Case, mnemo: str, work: str) -> dict:
    model_dir, head = G.generate(mnemo, case, work)
    ref = R.Reference(model_dir)
    ref64 = R.Reference(model_dir, torch.float64)
    tokens = case_tokens(case, ref.cfg.vocab)
    full = ref.forward(tokens)
    full64 = ref64.forward(tokens)
    checks: dict[str, float] = {}
    if case.prompt_len is not None:
        # The golden is what a cached decode produces (HF generate() path);
        # it must equal the full-sequence forward up to rounding.
        logits = ref.decode(tokens, case.prompt_len)
        exact = full64[case.prompt_len - 1:]
        checks["decode_vs_full_forward"] = R.max_row_rel_err(logits, full[case.prompt_len - 1:])
        positions = list(range(case.prompt_len - 1, len(tokens)))
        mode = "decode"
    else:
        sel = slice(None) if case.store == "all" else slice(-1, None)
        logits, exact = full[sel], full64[sel]
        positions = list(range(len(tokens)))[sel]
        mode = "forward"
    # The reference's own rounding error, measured against float64: it must
    # be far below the tolerance or the golden cannot judge the engine.
    checks["reference_f32_vs_f64"] = R.max_row_rel_err(logits, exact)
    for what in case.checks:
        checks[what] = sensitivity(model_dir, tokens, full, what)
    bands = rope_bands(ref.cfg) if ref.cfg.rope_scaling else None
    dtype = case.args[case.args.index("--dtype") + 1]
    tol = TOLERANCE[dtype]
    # Agreements (f32 vs f64, decode vs full forward) below tol / 10; the
    # effects of case.checks above 100 x tol.
    G.assert_checks(case.name, checks, tol, agreements=("f32_vs_f64", "decode_vs_full_forward"))
    golden = {
        **head,
        "config": G.model_config(model_dir),
        "weights_dtype": sorted(set(ref.weight_dtypes.values())),
        "reference": {
            "script": "tests/reference/hf_reference.py",
            "computation_dtype": "float32",
            "weights": "upcast exactly to float32 (every F16/BF16 value is an F32 value)",
            "softmax_dtype": "float32",
            "torch_version": torch.__version__,
        },
        "tolerance": {
            "max_rel_err": tol,
            "applies_to": "engine in f32 arithmetic throughout (MatmulPrecision::Exact)",
            **({"max_rel_err_fast": TOLERANCE_FAST_BF16,
                "fast_applies_to": "MatmulPrecision::Fast: GEMM inputs rounded to bf16 for BF16 weights"}
               if dtype == "bf16" else {}),
            "rel_err_definition": "per logits row r: max_i |engine[r][i] - golden[r][i]| / max_i |golden[r][i]|; "
                                  "the case passes when the largest over rows is <= max_rel_err",
        },
        **({"llama3_rope_bands": bands} if bands else {}),
        "mode": mode,
        "tokens": tokens,
        "logits_positions": positions,
        "checks": G.rounded(checks),
        "logits": G.rows_json(logits),
    }
    if case.prompt_len is not None:
        golden["prompt_len"] = case.prompt_len
        golden["how_to_run"] = ("prefill tokens[:prompt_len] (compare its last position with logits[0]), "
                                "then feed tokens[prompt_len:] one at a time through the KV cache, "
                                "comparing step j with logits[j+1]")
    elif case.store == "all":
        golden["how_to_run"] = "one forward over all tokens; compare every position (mnemo logits --all)"
    else:
        golden["how_to_run"] = "one forward over all tokens; compare the last position (mnemo logits)"
    return golden


def main() -> int:
    return G.write_goldens(__doc__, CASES, make_case, os.path.join(G.REPO, "tests", "golden"), rows_key="logits")


if __name__ == "__main__":
    sys.exit(main())
