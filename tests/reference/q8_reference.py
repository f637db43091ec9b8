"""Q8_0 quantization and the q8_0 x q8_0 product, written independently of the
C++ (numpy only), for tests/golden/q8/gemv.json (mnemo_kernels_test, Q8Golden).

Scheme (llama.cpp's quantize_row_q8_0_ref): per block of 32 consecutive values
along a row, amax = max|x|, d = amax / 127 in f32, id = 1 / d (0 when d == 0),
q = round(x * id) with ties away from zero (C roundf), the weight scale stored
as f16 (round to nearest even), the x scale kept in f32 (the engine's choice).
y_q8 is the exact (float64) dot product of the dequantized x and w; y_f32 that
of the unquantized ones.

    /usr/bin/python3 tests/reference/q8_reference.py [--out tests/golden/q8/gemv.json]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLOCK = 32


def quantize(m: np.ndarray, f16_scale: bool):
    """m: float32 [rows, cols]; returns (d float32 [rows, cols/32], q int8 [rows, cols])."""
    rows, cols = m.shape
    b = m.reshape(rows, cols // BLOCK, BLOCK)
    amax = np.abs(b).max(axis=2)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (b * inv[:, :, None]).astype(np.float32)           # f32 product, as in C
    a = np.floor(np.abs(v).astype(np.float64) + 0.5)        # roundf: ties away from zero
    q = (np.sign(v) * a).astype(np.int8).reshape(rows, cols)
    if f16_scale:
        d = d.astype(np.float16)
    return d, q


def dequantize(d: np.ndarray, q: np.ndarray) -> np.ndarray:
    rows, cols = q.shape
    return (q.reshape(rows, cols // BLOCK, BLOCK).astype(np.float64) * d.astype(np.float64)[:, :, None]).reshape(rows, cols)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "golden", "q8", "gemv.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(16)
    rows, cols, n = 12, 96, 3  # 3 blocks per row: the VNNI kernel's odd-block tail
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    w[1] *= np.float32(1e-3)   # small scales
    w[2, :BLOCK] = 0           # an all-zero block: d = 0, q = 0
    # d = 1 exactly: x * id lands on .5 ties, which roundf sends away from zero
    # (numpy's round would send 2.5 to 2).
    w[3, :BLOCK] = np.float32(0)
    w[3, :8] = np.array([127, 2.5, -3.5, 0.5, -0.5, 1.5, -126.5, 64.5], dtype=np.float32)
    x = rng.standard_normal((n, cols)).astype(np.float32)
    wd, wq = quantize(w, f16_scale=True)
    xd, xq = quantize(x, f16_scale=False)
    y_q8 = dequantize(xd, xq) @ dequantize(wd, wq).T
    y_f32 = x.astype(np.float64) @ w.astype(np.float64).T
    assert wq[3, 1] == 3 and wq[3, 2] == -4 and wq[3, 6] == -127, "ties must go away from zero"
    out = {
        "format_version": 1,
        "generator": "tests/reference/q8_reference.py",
        "rows": rows, "cols": cols, "n": n,
        "w": [float(v) for v in w.reshape(-1)],
        "x": [float(v) for v in x.reshape(-1)],
        "w_d_f16_bits": [int(v) for v in wd.view(np.uint16).reshape(-1)],
        "w_qs": [int(v) for v in wq.reshape(-1)],
        "x_d": [float(v) for v in xd.reshape(-1)],
        "x_qs": [int(v) for v in xq.reshape(-1)],
        "y_q8": [float(f"{v:.17g}") for v in y_q8.reshape(-1)],
        "y_f32": [float(f"{v:.17g}") for v in y_f32.reshape(-1)],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in out.items()) + "\n}\n")
    print(f"wrote {args.out}: max |y_q8 - y_f32| = {np.abs(y_q8 - y_f32).max():.3g}")


if __name__ == "__main__":
    main()
