"""What every golden-writing script in tests/reference/ shares.

A golden records how to regenerate its model (`mnemo model new` arguments and
the sha256 of the files that define it), the reference's numbers, and checks
showing that those numbers can judge the engine: the reference agrees with
itself in float64 far below the tolerance, and the feature a case covers
moves the result far above it. The scripts differ in what they compute; the
generation, hashing, formatting, checks and command line are here.
See README.md for the format and the tolerances.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from typing import Callable, Sequence

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as R  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORMAT_VERSION = 1


# Files whose bytes define the forward pass.  tokenizer.json is hashed too,
# but separately: a tokenizer change must not invalidate logits goldens.
def defines_logits(filename: str) -> bool:
    return filename in ("config.json", "model.safetensors.index.json") or filename.endswith(".safetensors")


def gen_args(arch="llama", hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128,
             vocab=320, dtype="f32", seed=1, extra=()) -> list[str]:
    return ["--arch", arch, "--hidden", str(hidden), "--layers", str(layers), "--heads", str(heads),
            "--kv-heads", str(kv_heads), "--intermediate", str(intermediate), "--vocab", str(vocab),
            "--dtype", dtype, "--seed", str(seed), *extra]


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_model(model_dir: str) -> tuple[dict[str, str], dict[str, str]]:
    """(sha256 of the files that define the forward pass, of the others), by file name."""
    weights, other = {}, {}
    for fn in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, fn)
        if not os.path.isfile(path):
            continue
        (weights if defines_logits(fn) else other)[fn] = sha256(path)
    return weights, other


def run_generator(mnemo: str, args: list[str], out_dir: str) -> None:
    cmd = [mnemo, "model", "new", *args, "--out", out_dir]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise R.ReferenceError(f"generator failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr.strip()}")


def generate(mnemo: str, case, work: str, format_version: int = FORMAT_VERSION) -> tuple[str, dict]:
    """Generates case's model (case.name, .description, .args) in work/<case.name>.

    Returns the model directory and the keys every golden starts with: what a
    test needs to regenerate the same model and to tell a generator change
    (the sha256 differ) from a wrong engine.
    """
    model_dir = os.path.join(work, case.name)
    run_generator(mnemo, case.args, model_dir)
    weight_hashes, other_hashes = hash_model(model_dir)
    return model_dir, {
        "format_version": format_version,
        "case": case.name,
        "description": case.description,
        "generator_args": case.args,
        "generator_command": "mnemo model new " + " ".join(case.args) + " --out DIR",
        "model_files_sha256": weight_hashes,
        "other_files_sha256": other_hashes,
    }


def model_config(model_dir: str) -> dict:
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def floats(v):
    """Floats (nested in lists) with 9 significant digits, which round-trip
    every float32 exactly; -inf as the string "-inf" (JSON has no infinity)."""
    if isinstance(v, list):
        return [floats(e) for e in v]
    return "-inf" if v == float("-inf") else float(f"{v:.9g}")


def rows_json(t: torch.Tensor) -> list[list[float]]:
    return floats(t.tolist())


def rounded(checks: dict[str, float]) -> dict[str, float]:
    """The checks as recorded: 3 significant digits (they are margins, not results)."""
    return {k: float(f"{v:.3g}") for k, v in checks.items()}


def assert_checks(case: str, checks: dict[str, float], tol: float | Callable[[str], float],
                  effect_factor: float = 100, agreements: Sequence[str] = ("f32_vs_f64",),
                  informational: Sequence[str] = ()) -> None:
    """Refuses a golden that could not judge the engine.

    A check whose key ends in one of `agreements` (the reference against
    float64, or against another path to the same result) must be below tol/10;
    every other one, but the `informational`, is how far the result moves with
    a feature switched off, and must exceed effect_factor x tol, or a wrong
    implementation of that feature could pass. `tol`: a number or a function
    of the key.
    """
    for k, v in checks.items():
        if k in informational:
            continue
        t = tol(k) if callable(tol) else tol
        if k.endswith(tuple(agreements)):
            assert v < t / 10, (case, k, v)
        else:
            assert v > effect_factor * t, f"{case}: {k} only {v:.2e}"


def format_golden(golden: dict, rows_key: str | None = None) -> str:
    """One key per line (and one element of `rows_key` per line): reviewable diffs, small files."""
    def compact(v) -> str:
        return json.dumps(v, separators=(",", ":"))
    lines = []
    for k, v in golden.items():
        if k == rows_key:
            rows = ",\n    ".join(compact(r) for r in v)
            lines.append(f'  {json.dumps(k)}: [\n    {rows}\n  ]')
        else:
            lines.append(f"  {json.dumps(k)}: {compact(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_goldens(doc: str, cases: list, make_case: Callable[[object, str, str], dict], default_out: str,
                  rows_key: str | None = None, argv: list[str] | None = None) -> int:
    """The command line of a golden script: make_case(case, mnemo, work) for
    each case (or those of --only), written to --out/<case>.json."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnemo", required=True, help="path to the mnemo binary (its `model new` generator)")
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--only", default="", help="comma-separated case names")
    ap.add_argument("--keep-models", default="", help="generate models here instead of a temp dir")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    # Single-threaded BLAS makes the float32 result independent of the core
    # count of the machine that writes the goldens.
    torch.set_num_threads(1)
    only = {n for n in args.only.split(",") if n}
    unknown = only - {c.name for c in cases}
    if unknown:
        print(f"{os.path.basename(sys.argv[0])}: unknown cases {sorted(unknown)}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    width = max(len(c.name) for c in cases) + 4
    with tempfile.TemporaryDirectory(prefix="mnemo-golden-") as tmp:
        work = args.keep_models or tmp
        for case in cases:
            if only and case.name not in only:
                continue
            golden = make_case(case, args.mnemo, work)
            path = os.path.join(args.out, case.name + ".json")
            with open(path, "w") as f:
                f.write(format_golden(golden, rows_key))
            summary = " ".join(f"{k}={v:.2e}" for k, v in golden["checks"].items())
            print(f"{case.name:{width}s} {os.path.getsize(path) // 1024:4d} KB  {summary}")
    return 0
