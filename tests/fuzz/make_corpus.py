#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/: small valid and invalid
inputs, so the fuzzers start from every branch a real file takes instead of
rediscovering the format byte by byte. Rerun after changing a seed below."""
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent


def safetensors(header, data_size, raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + bytes(data_size)


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


SAFETENSORS = {
    "valid_one_f32": safetensors({"w": t("F32", [2, 3], 0, 24)}, 24),
    "valid_mixed_meta": safetensors(
        {"__metadata__": {"format": "pt", "n": 1}, "a": t("BF16", [4], 0, 8), "b": t("F16", [2, 2], 8, 16)}, 16),
    "valid_empty": safetensors({}, 0),
    "valid_scalar_and_empty": safetensors({"s": t("F32", [], 0, 4), "e": t("F16", [0, 8], 4, 4)}, 4),
    "bad_truncated": b"\x10\x00\x00\x00\x00",
    "bad_len_past_end": struct.pack("<Q", 1000) + b"{}",
    "bad_not_json": safetensors(None, 0, raw_header=b"{\"w\":"),
    "bad_array": safetensors([1, 2], 0),
    "bad_dtype": safetensors({"w": t("I8", [4], 0, 4)}, 4),
    "bad_size": safetensors({"w": t("F32", [4], 0, 12)}, 16),
    "bad_overlap": safetensors({"a": t("F32", [4], 0, 16), "b": t("F32", [2], 8, 16)}, 16),
    "bad_past_data": safetensors({"w": t("F32", [4], 0, 16)}, 8),
    "bad_negative_shape": safetensors({"w": t("F32", [-1], 0, 4)}, 4),
}

LLAMA = {
    "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
    "vocab_size": 256, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "tie_word_embeddings": True, "bos_token_id": 1,
    "eos_token_id": 2, "hidden_act": "silu",
}
CONFIG = {
    "valid_llama": LLAMA,
    "valid_llama3_scaling": {**LLAMA, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                       "high_freq_factor": 4.0,
                                                       "original_max_position_embeddings": 64},
                             "eos_token_id": [2, 3]},
    "valid_qwen2": {**LLAMA, "architectures": ["Qwen2ForCausalLM"], "rope_scaling": None, "attention_bias": True},
    "valid_mistral_head_dim": {**LLAMA, "architectures": ["MistralForCausalLM"], "head_dim": 32,
                               "sliding_window": None},
    "bad_arch": {**LLAMA, "architectures": ["GPT2LMHeadModel"]},
    "bad_missing": {k: v for k, v in LLAMA.items() if k != "vocab_size"},
    "bad_kv_heads": {**LLAMA, "num_key_value_heads": 3},
    "bad_scaling": {**LLAMA, "rope_scaling": {"type": "yarn", "factor": 4}},
    "bad_types": {**LLAMA, "hidden_size": "64", "rms_norm_eps": -1},
}


def deep(d):
    return "[" * d + "]" * d


USER = '{"messages":[{"role":"user","content":"hi"}]'
# Bodies that killed or stalled mnemod before the shared JSON intake (issue
# "Hardening mnemod"): kept as regression seeds for the chat_completion and
# protocol_frame targets.
HOSTILE_HTTP = {
    "deep_job_id": USER + ',"job_id":' + deep(100000) + "}",
    "deep_this_func_call": USER + ',"this_func_call":' + deep(20000) + "}",
    "deep_vllm_last_func_call": USER + ',"vllm_xargs":{"last_func_call":' + deep(20000) + "}}",
    "deep_tool_parameters": USER + ',"tools":[{"type":"function","function":{"name":"f","parameters":'
    + "{\"a\":" * 4000 + "0" + "}" * 4000 + "}}]}",
    "deep_tool_call_arguments": '{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":'
    '"function","function":{"name":"f","arguments":' + deep(20000) + "}}]}]}",
    "deep_arguments_string": '{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":'
    '"function","function":{"name":"f","arguments":' + json.dumps(deep(20000)) + "}}]}]}",
    "wide_tool_parameters": USER + ',"tools":[{"type":"function","function":{"name":"f","parameters":{"enum":['
    + ",".join(["0"] * 100000) + "]}}}]}",
    "n_two": USER + ',"n":2}',
}
HOSTILE_WS = {
    "deep_metadata": '{"type":"session.create","metadata":' + deep(20000) + "}",
    "wide_tool_schema": '{"type":"session.create","tools":[{"type":"function","function":{"name":"f",'
    '"parameters":{"enum":[' + ",".join(["0"] * 100000) + "]}}}]}",
    "deep_tool_schema": '{"type":"session.create","tools":[{"type":"function","function":{"name":"f",'
    '"parameters":' + '{"a":' * 60 + "0" + "}" * 60 + "}}]}",
}


def main():
    for name, text in HOSTILE_HTTP.items():
        (HERE / "corpus" / "chat_completion" / f"hostile_{name}.json").write_text(text)
    for name, text in HOSTILE_WS.items():
        (HERE / "corpus" / "protocol_frame" / f"hostile_{name}.json").write_text(text)
    for name, blob in SAFETENSORS.items():
        out = HERE / "corpus" / "safetensors_header" / f"{name}.safetensors"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(blob)
    for name, cfg in CONFIG.items():
        out = HERE / "corpus" / "config" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(cfg, indent=1) + "\n")
    (HERE / "corpus" / "config" / "bad_not_json.json").write_text('{"architectures": [\n')


if __name__ == "__main__":
    main()
