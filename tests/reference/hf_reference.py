#!/usr/bin/python3
"""Independent PyTorch reference for Llama-family decoder forward passes.

Written from the Hugging Face transformers model definitions of
LlamaForCausalLM, Qwen2ForCausalLM and MistralForCausalLM, but importing
neither transformers nor safetensors: the point is a second implementation
that shares no code with the C++ engine (nor with the libraries it mimics),
so that agreement between the two means something.

Numerics follow what HF does for a float32 model: every weight is upcast
exactly to float32 (F16 and BF16 are subsets of F32, so the upcast is
lossless), RMSNorm computes its variance in float32, softmax runs in float32,
and rotary frequencies are computed in float32 the way HF's rope init
functions compute them.  The same code can run in float64 (`--compute f64`)
to estimate how far the float32 result itself is from exact arithmetic.

Run with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 tests/reference/hf_reference.py logits --model DIR --tokens 1,2,3 [--all]
    /usr/bin/python3 tests/reference/hf_reference.py check-decode --model DIR --tokens 1,2,3,4 --prompt-len 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

# safetensors dtype tags we accept; anything else is a clear error rather than
# a silent reinterpretation of bytes.
ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
ARCHS = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")


class ReferenceError(Exception):
    pass


# ---------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, raw data.
# ---------------------------------------------------------------------------

def read_safetensors(path: str) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ReferenceError(f"{path}: shorter than the 8-byte header length")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        raise ReferenceError(f"{path}: header length {hlen} runs past end of file")
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data_start = 8 + hlen
    data_len = len(blob) - data_start
    out: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tag = info["dtype"]
        if tag not in ST_DTYPES:
            raise ReferenceError(f"{path}: tensor {name} has unsupported dtype {tag}")
        dtype = ST_DTYPES[tag]
        shape = [int(d) for d in info["shape"]]
        begin, end = (int(v) for v in info["data_offsets"])
        numel = math.prod(shape)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if not (0 <= begin <= end <= data_len) or end - begin != numel * itemsize:
            raise ReferenceError(f"{path}: tensor {name} has bad data_offsets {begin},{end} "
                                 f"for shape {shape} {tag}")
        if numel == 0:
            out[name] = torch.empty(shape, dtype=dtype)
            continue
        # bytearray: frombuffer needs a writable buffer to avoid a warning, and
        # copying per tensor keeps each tensor independent of the file blob.
        raw = bytearray(blob[data_start + begin:data_start + end])
        t = torch.frombuffer(raw, dtype=dtype)
        if sys.byteorder != "little":
            raise ReferenceError("big-endian hosts are not supported")
        out[name] = t.reshape(shape)
    return out


def load_weights(model_dir: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Returns (tensors, dtype tag per tensor). Handles single file and shards."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    single_path = os.path.join(model_dir, "model.safetensors")
    tensors: dict[str, torch.Tensor] = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
        per_file = {fn: read_safetensors(os.path.join(model_dir, fn)) for fn in files}
        for name, fn in weight_map.items():
            if name not in per_file[fn]:
                raise ReferenceError(f"{fn}: index says it holds {name}, but it does not")
            tensors[name] = per_file[fn][name]
        # A tensor present in a shard but absent from the index would be
        # ignored by HF's loader too; flag it, it means the generator is off.
        for fn, ts in per_file.items():
            for name in ts:
                if weight_map.get(name) != fn:
                    raise ReferenceError(f"{fn}: holds {name}, which the index does not map there")
    elif os.path.exists(single_path):
        tensors = read_safetensors(single_path)
    else:
        raise ReferenceError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")
    tags = {n: {v: k for k, v in ST_DTYPES.items()}[t.dtype] for n, t in tensors.items()}
    return tensors, tags


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------

@dataclass
class Config:
    arch: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    eps: float
    rope_theta: float
    rope_scaling: dict | None
    tie: bool
    attention_bias: bool   # bias on q, k, v (Qwen2 always; Llama if attention_bias)
    o_bias: bool           # bias on o_proj (Llama attention_bias only)
    mlp_bias: bool
    sliding_window: list[int | None] = field(default_factory=list)  # per layer, None = full


def parse_config(model_dir: str) -> Config:
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    arch = (c.get("architectures") or [None])[0]
    if arch not in ARCHS:
        raise ReferenceError(f"config.json: unsupported architecture {arch}")
    hidden = int(c["hidden_size"])
    heads = int(c["num_attention_heads"])
    kv_heads = int(c.get("num_key_value_heads") or heads)
    # HF: head_dim = getattr(config, "head_dim", None) or hidden_size // num_attention_heads
    head_dim = int(c.get("head_dim") or hidden // heads)
    act = c.get("hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise ReferenceError(f"config.json: hidden_act {act} is not silu")
    layers = int(c["num_hidden_layers"])
    if arch == "Qwen2ForCausalLM":
        qkv_bias, o_bias, mlp_bias = True, False, False
        # Qwen2: sliding window only when use_sliding_window, and only for
        # layers at index >= max_window_layers (HF's default layer_types).
        if c.get("use_sliding_window", False) and c.get("sliding_window"):
            mwl = int(c.get("max_window_layers", 28))  # Qwen2Config default
            sw = [int(c["sliding_window"]) if i >= mwl else None for i in range(layers)]
        else:
            sw = [None] * layers
    else:
        ab = bool(c.get("attention_bias", False))
        qkv_bias, o_bias, mlp_bias = ab, ab, bool(c.get("mlp_bias", False))
        # MistralConfig defaults sliding_window to 4096 when the key is
        # absent; an explicit null means full attention.
        window = c.get("sliding_window", 4096) if arch == "MistralForCausalLM" else None
        if window:
            sw = [int(window)] * layers
        else:
            sw = [None] * layers
    rs = c.get("rope_scaling")
    return Config(
        arch=arch, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
        head_dim=head_dim, intermediate=int(c["intermediate_size"]), vocab=int(c["vocab_size"]),
        eps=float(c.get("rms_norm_eps", 1e-6)), rope_theta=float(c.get("rope_theta", 10000.0)),
        rope_scaling=rs, tie=bool(c.get("tie_word_embeddings", False)),
        attention_bias=qkv_bias, o_bias=o_bias, mlp_bias=mlp_bias, sliding_window=sw)


# ---------------------------------------------------------------------------
# Rotary frequencies, as HF's rope init functions compute them (float32).
# ---------------------------------------------------------------------------

def rope_inv_freq(cfg: Config) -> torch.Tensor:
    dim = cfg.head_dim
    # _compute_default_rope_parameters: int64 arange cast to float, then a
    # float32 power with a Python-float base.
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.rope_scaling
    if not rs:
        return inv_freq
    rope_type = rs.get("rope_type", rs.get("type", "default"))
    if rope_type == "default":
        return inv_freq
    if rope_type == "linear":
        return inv_freq / float(rs["factor"])
    if rope_type != "llama3":
        raise ReferenceError(f"config.json: rope_scaling type {rope_type} not implemented here")
    # _compute_llama3_parameters, step for step (float32 tensors throughout).
    factor = rs["factor"]
    low_freq_factor = rs["low_freq_factor"]
    high_freq_factor = rs["high_freq_factor"]
    old_context_len = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    # HF layout: the first half of head_dim pairs with the second half.
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

@dataclass
class KVCache:
    """Keys are stored after RoPE, as HF's DynamicCache (and the engine) do."""
    k: list[torch.Tensor | None]
    v: list[torch.Tensor | None]
    length: int = 0


class Reference:
    def __init__(self, model_dir: str, compute: torch.dtype = torch.float32):
        self.cfg = parse_config(model_dir)
        self.dtype = compute
        raw, self.weight_dtypes = load_weights(model_dir)
        self.w = self._take_weights(raw)
        # inv_freq is a float32 buffer in HF; keep it float32-defined even in
        # the float64 run so both runs describe the same model.
        self.inv_freq = rope_inv_freq(self.cfg).to(compute)

    def _take_weights(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        kv_dim = cfg.kv_heads * cfg.head_dim
        q_dim = cfg.heads * cfg.head_dim
        expect: dict[str, tuple[int, ...]] = {
            "model.embed_tokens.weight": (cfg.vocab, cfg.hidden),
            "model.norm.weight": (cfg.hidden,),
        }
        if not cfg.tie or "lm_head.weight" in raw:
            # A tied checkpoint may still carry lm_head (HF then ties it anyway);
            # an untied one must have it.
            expect["lm_head.weight"] = (cfg.vocab, cfg.hidden)
        for i in range(cfg.layers):
            p = f"model.layers.{i}."
            expect[p + "input_layernorm.weight"] = (cfg.hidden,)
            expect[p + "post_attention_layernorm.weight"] = (cfg.hidden,)
            expect[p + "self_attn.q_proj.weight"] = (q_dim, cfg.hidden)
            expect[p + "self_attn.k_proj.weight"] = (kv_dim, cfg.hidden)
            expect[p + "self_attn.v_proj.weight"] = (kv_dim, cfg.hidden)
            expect[p + "self_attn.o_proj.weight"] = (cfg.hidden, q_dim)
            if cfg.attention_bias:
                expect[p + "self_attn.q_proj.bias"] = (q_dim,)
                expect[p + "self_attn.k_proj.bias"] = (kv_dim,)
                expect[p + "self_attn.v_proj.bias"] = (kv_dim,)
            if cfg.o_bias:
                expect[p + "self_attn.o_proj.bias"] = (cfg.hidden,)
            expect[p + "mlp.gate_proj.weight"] = (cfg.intermediate, cfg.hidden)
            expect[p + "mlp.up_proj.weight"] = (cfg.intermediate, cfg.hidden)
            expect[p + "mlp.down_proj.weight"] = (cfg.hidden, cfg.intermediate)
            if cfg.mlp_bias:
                for m in ("gate", "up"):
                    expect[p + f"mlp.{m}_proj.bias"] = (cfg.intermediate,)
                expect[p + "mlp.down_proj.bias"] = (cfg.hidden,)
        w: dict[str, torch.Tensor] = {}
        for name, shape in expect.items():
            if name not in raw:
                raise ReferenceError(f"missing tensor {name}")
            if tuple(raw[name].shape) != shape:
                raise ReferenceError(f"tensor {name} has shape {tuple(raw[name].shape)}, expected {shape}")
            # Exact upcast: every F16/BF16 value is representable in F32 (and F64).
            w[name] = raw[name].to(self.dtype)
        # Unexpected tensors mean generator and reference disagree on the
        # architecture; HF would warn and drop them, we refuse.  Old checkpoints
        # store rotary inv_freq buffers, which HF recomputes; ignore those.
        extra = [n for n in raw if n not in expect and not n.endswith("rotary_emb.inv_freq")]
        if extra:
            raise ReferenceError(f"unexpected tensors: {sorted(extra)[:5]}")
        if "lm_head.weight" not in w or cfg.tie:
            w["lm_head.weight"] = w["model.embed_tokens.weight"]
        return w

    def new_cache(self) -> KVCache:
        return KVCache(k=[None] * self.cfg.layers, v=[None] * self.cfg.layers)

    def _rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # LlamaRMSNorm: variance in (at least) float32, x * rsqrt(var + eps),
        # cast back to the input dtype, and only then multiplied by the weight.
        in_dtype = x.dtype
        h = x.to(torch.float32) if in_dtype != torch.float64 else x
        var = h.pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(var + self.cfg.eps)
        return weight * h.to(in_dtype)

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))

    def forward(self, tokens: list[int], cache: KVCache | None = None) -> torch.Tensor:
        """Logits [len(tokens), vocab] for tokens placed after cache's contents.

        With cache=None this is one full-sequence forward (HF's prefill); with a
        cache it appends to it, which is how decode steps are computed.
        """
        cfg = self.cfg
        if any(t < 0 or t >= cfg.vocab for t in tokens):
            raise ReferenceError(f"token id out of range [0, {cfg.vocab})")
        past = cache.length if cache is not None else 0
        T = len(tokens)
        pos = torch.arange(past, past + T, dtype=torch.int64)
        # LlamaRotaryEmbedding: freqs = inv_freq (outer) positions, in the
        # compute dtype; emb = cat(freqs, freqs); attention_scaling is 1.0
        # for default and llama3 rope.
        freqs = pos.to(self.dtype)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None], emb.sin()[None]  # [1, T, hd], broadcast over heads

        x = self.w["model.embed_tokens.weight"][torch.tensor(tokens, dtype=torch.int64)]
        groups = cfg.heads // cfg.kv_heads
        scale = cfg.head_dim ** -0.5
        total = past + T
        qpos = pos[:, None]
        kpos = torch.arange(total, dtype=torch.int64)[None, :]
        for i in range(cfg.layers):
            p = f"model.layers.{i}."
            h = self._rms_norm(x, self.w[p + "input_layernorm.weight"])
            q = self._linear(h, p + "self_attn.q_proj").view(T, cfg.heads, cfg.head_dim).transpose(0, 1)
            k = self._linear(h, p + "self_attn.k_proj").view(T, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
            v = self._linear(h, p + "self_attn.v_proj").view(T, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                if cache.k[i] is not None:
                    k = torch.cat((cache.k[i], k), dim=1)
                    v = torch.cat((cache.v[i], v), dim=1)
                cache.k[i], cache.v[i] = k, v
            # repeat_kv: kv head j serves query heads j*groups .. j*groups+groups-1.
            k_rep = k.repeat_interleave(groups, dim=0)
            v_rep = v.repeat_interleave(groups, dim=0)
            scores = torch.matmul(q, k_rep.transpose(1, 2)) * scale  # [heads, T, total]
            allowed = kpos <= qpos
            if cfg.sliding_window[i] is not None:
                # HF keeps key j for query i iff i - j < sliding_window.
                allowed = allowed & (qpos - kpos < cfg.sliding_window[i])
            scores = scores.masked_fill(~allowed[None], float("-inf"))
            probs = torch.softmax(scores.to(torch.float32) if self.dtype != torch.float64 else scores,
                                  dim=-1).to(self.dtype)
            attn = torch.matmul(probs, v_rep)  # [heads, T, hd]
            attn = attn.transpose(0, 1).reshape(T, cfg.heads * cfg.head_dim)
            x = x + self._linear(attn, p + "self_attn.o_proj")
            h = self._rms_norm(x, self.w[p + "post_attention_layernorm.weight"])
            gate = self._linear(h, p + "mlp.gate_proj")
            up = self._linear(h, p + "mlp.up_proj")
            x = x + self._linear(F.silu(gate) * up, p + "mlp.down_proj")
        if cache is not None:
            cache.length = total
        x = self._rms_norm(x, self.w["model.norm.weight"])
        return F.linear(x, self.w["lm_head.weight"])

    def decode(self, tokens: list[int], prompt_len: int) -> torch.Tensor:
        """Prefill tokens[:prompt_len], then feed the rest one at a time.

        Returns logits [len(tokens) - prompt_len + 1, vocab]: the prefill's last
        position, then each decode step (i.e. positions prompt_len-1 .. end).
        """
        if not 1 <= prompt_len <= len(tokens):
            raise ReferenceError("prompt_len must be in [1, len(tokens)]")
        cache = self.new_cache()
        rows = [self.forward(tokens[:prompt_len], cache)[-1]]
        for t in tokens[prompt_len:]:
            rows.append(self.forward([t], cache)[-1])
        return torch.stack(rows)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a-b| / max|b| over one logits row (b is the reference)."""
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    return float((a64 - b64).abs().max() / b64.abs().max())


def max_row_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return max(rel_err(a[i], b[i]) for i in range(b.shape[0]))


def check_decode(ref: Reference, tokens: list[int], prompt_len: int) -> float:
    """Max row rel err between incremental decode and one full forward."""
    full = ref.forward(tokens)[prompt_len - 1:]
    inc = ref.decode(tokens, prompt_len)
    return max_row_rel_err(inc, full)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits", help="print {\"logits\": [[...]]} like `mnemo logits`")
    lg.add_argument("--model", required=True)
    lg.add_argument("--tokens", required=True, help="comma-separated token ids")
    lg.add_argument("--all", action="store_true", help="every position, not just the last")
    lg.add_argument("--compute", choices=["f32", "f64"], default="f32")
    cd = sub.add_parser("check-decode", help="incremental decode vs full forward")
    cd.add_argument("--model", required=True)
    cd.add_argument("--tokens", required=True)
    cd.add_argument("--prompt-len", type=int, required=True)
    args = ap.parse_args()
    dtype = torch.float64 if getattr(args, "compute", "f32") == "f64" else torch.float32
    try:
        ref = Reference(args.model, dtype)
        tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
        if args.cmd == "logits":
            with torch.no_grad():
                out = ref.forward(tokens)
            rows = out if args.all else out[-1:]
            print(json.dumps({"logits": [[float(f"{v:.9g}") for v in r.tolist()] for r in rows]}))
        else:
            with torch.no_grad():
                err = check_decode(ref, tokens, args.prompt_len)
            print(json.dumps({"max_rel_err": err}))
    except (ReferenceError, OSError, KeyError, ValueError) as e:
        print(f"hf_reference: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
