#!/usr/bin/python3
"""Compares `mnemo logits` with every golden in tests/golden/.

For each golden it regenerates the model with the recorded generator
arguments, checks the sha256 of the generated files, runs
`mnemo logits --model DIR --tokens ... --all` and reports, per case, the
max relative error (per row max|engine - golden| / max|golden|, maximum
over the rows compared).  Decode goldens are compared against the CLI's
full-sequence forward at the same positions (the CLI has no step-by-step
mode; the C++ test drives the KV cache itself).

If the generator no longer reproduces the recorded files, the golden is
stale: the case is reported as such and compared against a fresh run of the
reference on the new model instead, so a forward-pass bug is still visible.

    /usr/bin/python3 tests/reference/check_cli.py --mnemo build/engine/cli/mnemo
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as R  # noqa: E402
import golden_common as G  # noqa: E402


def cli_logits(mnemo: str, model_dir: str, tokens: list[int]) -> torch.Tensor:
    cmd = [mnemo, "logits", "--model", model_dir, "--tokens", ",".join(map(str, tokens)), "--all"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise R.ReferenceError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return torch.tensor(json.loads(res.stdout)["logits"], dtype=torch.float64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnemo", required=True)
    ap.add_argument("--golden-dir", default=os.path.join(G.REPO, "tests", "golden"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    only = {n for n in args.only.split(",") if n}
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mnemo-check-") as work:
        print(f"{'case':32s} {'rows':>4s} {'max_rel_err':>11s} {'tol':>7s}  result")
        for path in sorted(glob.glob(os.path.join(args.golden_dir, "*.json"))):
            g = json.load(open(path))
            if only and g["case"] not in only:
                continue
            model_dir = os.path.join(work, g["case"])
            note = ""
            try:
                G.run_generator(args.mnemo, g["generator_args"], model_dir)
                hashes, _ = G.hash_model(model_dir)
                expected = torch.tensor(g["logits"], dtype=torch.float64)
                if hashes != g["model_files_sha256"]:
                    note = " (generator output changed: golden stale, compared with a fresh reference run)"
                    ref = R.Reference(model_dir)
                    full = ref.forward(g["tokens"])
                    expected = full[g["logits_positions"]].to(torch.float64)
                got = cli_logits(args.mnemo, model_dir, g["tokens"])[g["logits_positions"]]
                err = R.max_row_rel_err(got, expected)
            except (R.ReferenceError, ValueError, KeyError, IndexError, RuntimeError) as e:
                print(f"{g['case']:32s} ERROR {e}")
                failed += 1
                continue
            tol = g["tolerance"]["max_rel_err"]
            ok = err <= tol and not note
            failed += not ok
            fast = g["tolerance"].get("max_rel_err_fast")
            if not ok and fast and err <= fast:
                note += (f" (within the MatmulPrecision::Fast bound {fast:.0e}: is the CLI rounding GEMM inputs "
                         f"to bf16?)")
            print(f"{g['case']:32s} {len(g['logits_positions']):4d} {err:11.2e} {tol:7.0e}  "
                  f"{'ok' if ok else 'FAIL'}{note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
