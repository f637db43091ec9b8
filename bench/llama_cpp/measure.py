"""Pure parts of the llama.cpp comparison: parsing both programs' output, the roofline's bytes per
decoded token, medians, targets and the table. No processes are run here, so
tests/bench/test_llama_compare.py covers it without llama.cpp or a model."""
import json
import re
import statistics
import struct

_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|inf|nan)"
# mnemo run --stats (engine/cli/cmd_run.cc), one line on stderr, e.g.
# "prompt 512 tokens, first token after 2.1 s (243.8 tok/s prefill); 128 tokens generated,
#  61.2 tok/s decode; finish: length" (the decode part is absent when one token was generated).
_STATS = re.compile(
    r"prompt (\d+) tokens, first token after " + _NUM + r" s \(" + _NUM + r" tok/s prefill\); "
    r"(\d+) tokens generated(?:, " + _NUM + r" tok/s decode)?; finish: (\S+)")


def parse_mnemo_stats(stderr):
    """The last --stats line of mnemo run's stderr as a dict, or None when there is none."""
    found = None
    for line in stderr.splitlines():
        m = _STATS.search(line)
        if m:
            found = m
    if not found:
        return None
    g = found.groups()
    return {"prompt_tokens": int(g[0]), "ttft_s": float(g[1]), "prefill_tps": float(g[2]),
            "generated_tokens": int(g[3]), "decode_tps": float(g[4]) if g[4] is not None else None,
            "finish": g[5]}


def parse_llama_bench_json(stdout):
    """llama-bench -o json: a JSON array with one object per test. Returns, per test, what the
    comparison needs: the shape (n_prompt, n_gen, n_depth, threads, flash_attn, KV types) and
    tokens/s (avg_ts, and samples_ts, one per repetition)."""
    start = stdout.find("[")
    if start < 0:
        raise ValueError("no JSON array in llama-bench output")
    tests = json.loads(stdout[start:stdout.rfind("]") + 1])
    out = []
    for t in tests:
        out.append({
            "n_prompt": int(t["n_prompt"]), "n_gen": int(t["n_gen"]), "n_depth": int(t.get("n_depth", 0)),
            "threads": int(t["n_threads"]), "flash_attn": t.get("flash_attn"),
            "type_k": t.get("type_k"), "type_v": t.get("type_v"), "model_type": t.get("model_type"),
            "model_size": t.get("model_size"), "avg_tps": float(t["avg_ts"]),
            "samples_tps": [float(x) for x in t.get("samples_ts", [t["avg_ts"]])],
            "build_commit": t.get("build_commit")})
    return out


def best_llama_tps(tests):
    """The fastest test of one llama-bench run (several when -fa 0,1 asks for both), so llama.cpp
    is compared at its best setting; returns (tokens/s, the test)."""
    best = max(tests, key=lambda t: t["avg_tps"])
    return best["avg_tps"], best


def profile_section(stderr, phase):
    """The table `mnemo run --profile` prints for one phase ("prefill" or "decode"): its header line
    and rows through the "total" row, as a list of lines; [] when the output has none."""
    out = []
    for line in stderr.splitlines():
        if not out:
            if line.startswith(phase + " ("):
                out.append(line)
            continue
        out.append(line)
        if line.startswith("total"):
            return out
    return []


def summary(values):
    """Median, min and max of one measurement's rounds (None entries, failed rounds, dropped)."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


# Bytes per element of each safetensors dtype mnemo model new writes.
_ST_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I32": 4, "I64": 8, "U8": 1, "I8": 1}
# Q8_0, in llama.cpp and in mnemo's --weights-dtype q8_0: blocks of 32 int8 with one f16 scale.
Q8_0_BYTES = 34 / 32
KV_BYTES = {"f32": 4, "bf16": 2, "f16": 2, "q8_0": Q8_0_BYTES}


def safetensors_header(path):
    """The JSON header of one safetensors file (name -> dtype, shape, offsets)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def decode_weight_bytes(tensors, weights_dtype=None):
    """Weight bytes one decoded token reads: every tensor once, except the token embedding, of
    which a token reads one row (counted whole when it is tied as the LM head, i.e. when there is
    no lm_head.weight). tensors: name -> {"dtype", "shape"}. weights_dtype "q8_0" counts 2-D
    matrices at Q8_0's 34 bytes per 32 weights (vectors stay as stored)."""
    tied = not any(n.endswith("lm_head.weight") for n in tensors)
    total = 0.0
    for name, t in tensors.items():
        if name == "__metadata__":
            continue
        if name.endswith("embed_tokens.weight") and not tied:
            continue
        n = 1
        for d in t["shape"]:
            n *= d
        per = Q8_0_BYTES if weights_dtype == "q8_0" and len(t["shape"]) == 2 else _ST_BYTES[t["dtype"]]
        total += n * per
    return total


def kv_bytes_per_position(config, kv_dtype):
    """K and V bytes of one position across all layers."""
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    kv_heads = config.get("num_key_value_heads", heads)
    return 2 * config["num_hidden_layers"] * kv_heads * head_dim * KV_BYTES[kv_dtype]


def decode_bytes_per_token(weight_bytes, config, kv_dtype, context, n_decode):
    """Bytes read per decoded token: the weights plus the KV cache at the run's mean context
    (decoding n_decode tokens after `context` positions reads context + i positions at step i)."""
    mean_ctx = context + (n_decode + 1) / 2
    return weight_bytes + mean_ctx * kv_bytes_per_position(config, kv_dtype)


def roofline_share(tps, bytes_per_token, triad_gbps):
    """Share (0..1) of the triad roofline a decode rate reaches: tok/s x bytes/token / triad."""
    if not tps or not triad_gbps:
        return None
    return tps * bytes_per_token / (triad_gbps * 1e9)


# Targets of issue 16: the ratio Mnemo / llama.cpp, and for decode the roofline share.
TARGETS = {"decode": (1.2, 0.85), "decode_q8": (1.2, 0.85), "prefill": (1.0, None), "decode_ctx": (1.2, None)}


def verdict(kind, ratio, share):
    """PASS when every target of the row is met, MISS otherwise, '-' without a measurement."""
    want_ratio, want_share = TARGETS[kind]
    if ratio is None:
        return "-"
    ok = ratio >= want_ratio and (want_share is None or (share is not None and share >= want_share))
    return "PASS" if ok else "MISS"


def target_text(kind):
    want_ratio, want_share = TARGETS[kind]
    return f">= {want_ratio:.1f}x" + (f", >= {want_share:.0%} roofline" if want_share else "")


def _fmt(s, digits=1):
    if not s:
        return "-"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def _pct(s):
    if not s:
        return "-"
    return f"{s['median']:.0%} ({s['min']:.0%}-{s['max']:.0%})"


def table(rows):
    """Markdown table of the summarised rows (see llama_compare.summarise)."""
    head = ["row", "model", "threads", "Mnemo tok/s", "llama.cpp tok/s", "ratio", "Mnemo % roofline",
            "llama.cpp % roofline", "target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.get("skipped"):
            cells = [r["row"], r["model"], str(r["threads"]), "-", "-", "-", "-", "-", target_text(r["kind"]),
                     "skipped: " + r["skipped"]]
        else:
            ratio = r["ratio"]
            cells = [r["row"], r["model"], str(r["threads"]), _fmt(r["mnemo"]), _fmt(r["llama"]),
                     f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})" if ratio else "-",
                     _pct(r.get("mnemo_roofline")), _pct(r.get("llama_roofline")), target_text(r["kind"]),
                     r["verdict"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
