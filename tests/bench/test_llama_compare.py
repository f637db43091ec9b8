"""bench/llama_cpp: parsing llama-bench's -o json and mnemo run --stats, the roofline's bytes per
token, targets and the table, and the GGUF converter's tokenizer stub. Needs neither llama.cpp nor
a model: the llama-bench output below is a captured run."""
import json
import pathlib
import struct
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench" / "llama_cpp"))
import convert  # noqa: E402
import measure  # noqa: E402

# A captured run (AMD EPYC, 2 cores, a loaded machine), model path shortened:
# llama-bench -m 123M-bf16.gguf -t 2 -r 1 -o json -p 0 -n 16 -d 256 -fa 0,1; a stray log line
# before the array is tolerated.
LLAMA_BENCH_JSON = """load_backend: something
[
  {
    "build_commit": "de3ff81",
    "build_number": 1,
    "cpu_info": "AMD EPYC",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "123M-bf16.gguf",
    "model_type": "llama ?B BF16",
    "model_size": 268250112,
    "model_n_params": 134105856,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": -1,
    "n_cpu_moe": 0,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": 0,
    "devices": "auto",
    "tensor_split": "0.00",
    "tensor_buft_overrides": "none",
    "load_mode": "auto",
    "lazy_mode": "auto",
    "embeddings": false,
    "no_op_offload": 0,
    "no_host": false,
    "fit_target": 0,
    "fit_min_ctx": 0,
    "n_prompt": 0,
    "n_gen": 16,
    "n_depth": 256,
    "test_time": "2026-12-03T17:18:36Z",
    "avg_ns": 5288629414,
    "stddev_ns": 0,
    "avg_ts": 3.025359,
    "stddev_ts": 0.000000,
    "samples_ns": [ 5288629414 ],
    "samples_ts": [ 3.02536 ]
  },
  {
    "build_commit": "de3ff81",
    "build_number": 1,
    "cpu_info": "AMD EPYC",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "123M-bf16.gguf",
    "model_type": "llama ?B BF16",
    "model_size": 268250112,
    "model_n_params": 134105856,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": -1,
    "n_cpu_moe": 0,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": 1,
    "devices": "auto",
    "tensor_split": "0.00",
    "tensor_buft_overrides": "none",
    "load_mode": "auto",
    "lazy_mode": "auto",
    "embeddings": false,
    "no_op_offload": 0,
    "no_host": false,
    "fit_target": 0,
    "fit_min_ctx": 0,
    "n_prompt": 0,
    "n_gen": 16,
    "n_depth": 256,
    "test_time": "2026-12-03T17:18:56Z",
    "avg_ns": 1431753919,
    "stddev_ns": 0,
    "avg_ts": 11.175105,
    "stddev_ts": 0.000000,
    "samples_ns": [ 1431753919 ],
    "samples_ts": [ 11.1751 ]
  }
]
"""


def test_llama_bench_json_parsed_and_best_setting_chosen():
    tests = measure.parse_llama_bench_json(LLAMA_BENCH_JSON)
    assert [t["flash_attn"] for t in tests] == [0, 1]
    assert tests[0]["n_depth"] == 256 and tests[0]["n_gen"] == 16 and tests[0]["n_prompt"] == 0
    assert tests[0]["threads"] == 2 and tests[0]["type_k"] == "f16" and tests[0]["samples_tps"] == [3.02536]
    assert tests[0]["avg_tps"] == pytest.approx(3.025359) and tests[0]["build_commit"] == "de3ff81"
    tps, best = measure.best_llama_tps(tests)
    assert tps == pytest.approx(11.175105) and best["flash_attn"] == 1


def test_llama_bench_without_json_is_an_error():
    with pytest.raises(ValueError):
        measure.parse_llama_bench_json("error: failed to load model\n")


def test_mnemo_stats_line_parsed():
    err = ("mnemo: loading\n"
           "prompt 4096 tokens, first token after 21.5 s (190.5 tok/s prefill); 128 tokens generated, "
           "55.25 tok/s decode; finish: length\n")
    st = measure.parse_mnemo_stats(err)
    assert st == {"prompt_tokens": 4096, "ttft_s": 21.5, "prefill_tps": 190.5, "generated_tokens": 128,
                  "decode_tps": 55.25, "finish": "length"}


def test_mnemo_stats_without_decode_and_in_exponent_form():
    # --max-tokens 1 (the prefill row): no inter-token time, so no decode rate.
    st = measure.parse_mnemo_stats("prompt 512 tokens, first token after 0.000206438 s (2.48e+06 tok/s prefill); "
                                   "1 tokens generated; finish: length")
    assert st["prefill_tps"] == pytest.approx(2.48e6) and st["decode_tps"] is None and st["generated_tokens"] == 1
    assert measure.parse_mnemo_stats("mnemo: error: unknown flag --weights-dtype\n") is None


def test_last_stats_line_wins():
    a = "prompt 8 tokens, first token after 1 s (8 tok/s prefill); 2 tokens generated, 10 tok/s decode; finish: stop"
    b = a.replace("10 tok/s", "20 tok/s")
    assert measure.parse_mnemo_stats(a + "\n" + b + "\n")["decode_tps"] == 20


def _tensors(tied):
    t = {"__metadata__": {"format": "pt"},
         "model.embed_tokens.weight": {"dtype": "BF16", "shape": [32000, 768]},
         "model.layers.0.self_attn.q_proj.weight": {"dtype": "BF16", "shape": [768, 768]},
         "model.layers.0.input_layernorm.weight": {"dtype": "BF16", "shape": [768]},
         "model.norm.weight": {"dtype": "BF16", "shape": [768]}}
    if not tied:
        t["lm_head.weight"] = {"dtype": "BF16", "shape": [32000, 768]}
    return t


def test_decode_weight_bytes_skip_the_embedding_unless_tied():
    untied = measure.decode_weight_bytes(_tensors(False))
    assert untied == 2 * (768 * 768 + 768 + 768 + 32000 * 768)
    # Tied: the embedding is the LM head, read whole.
    assert measure.decode_weight_bytes(_tensors(True)) == untied
    q8 = measure.decode_weight_bytes(_tensors(False), "q8_0")
    assert q8 == pytest.approx(34 / 32 * (768 * 768 + 32000 * 768) + 2 * 2 * 768)


def test_safetensors_header_read(tmp_path):
    header = json.dumps({"a.weight": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}}).encode()
    p = tmp_path / "m.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + bytes(12))
    assert measure.safetensors_header(p)["a.weight"]["shape"] == [2, 3]


def test_kv_and_bytes_per_token_for_tinyllama_shape():
    cfg = {"hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 4, "num_hidden_layers": 22}
    assert measure.kv_bytes_per_position(cfg, "bf16") == 2 * 22 * 4 * 64 * 2
    assert measure.kv_bytes_per_position(cfg, "f32") == 2 * 22 * 4 * 64 * 4
    # Decoding 128 tokens after 4096 reads on average 4096 + 64.5 positions per token.
    b = measure.decode_bytes_per_token(1e9, cfg, "f16", 4096, 128)
    assert b == pytest.approx(1e9 + 4160.5 * 22528)


def test_roofline_share_and_verdicts():
    assert measure.roofline_share(100, 2e8, 20) == pytest.approx(1.0)
    assert measure.roofline_share(None, 2e8, 20) is None and measure.roofline_share(100, 2e8, None) is None
    assert measure.verdict("decode", 1.25, 0.90) == "PASS"
    assert measure.verdict("decode", 1.25, 0.80) == "MISS"   # fast enough, but far from the roofline
    assert measure.verdict("decode", 1.10, 0.95) == "MISS"
    assert measure.verdict("decode", 1.25, None) == "MISS"   # no bandwidth measured: not shown to pass
    assert measure.verdict("prefill", 1.0, None) == "PASS"
    assert measure.verdict("prefill", 0.99, None) == "MISS"
    assert measure.verdict("decode_ctx", 1.19, None) == "MISS"
    assert measure.verdict("decode", None, None) == "-"


def test_summary_and_table():
    s = measure.summary([3.0, None, 1.0, 2.0])
    assert s == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert measure.summary([None]) is None
    row = {"kind": "decode", "row": "decode BF16", "model": "123M", "threads": 2,
           "mnemo": measure.summary([120.0, 130.0, 125.0]), "llama": measure.summary([100.0, 100.0, 100.0]),
           "ratio": measure.summary([1.2, 1.3, 1.25]), "mnemo_roofline": measure.summary([0.9, 0.86, 0.88]),
           "llama_roofline": None, "verdict": "PASS"}
    skipped = {"kind": "decode_q8", "row": "decode Q8_0", "model": "123M", "threads": 1,
               "skipped": "mnemo run has no --weights-dtype"}
    out = measure.table([row, skipped]).splitlines()
    assert out[0].startswith("| row | model | threads | Mnemo tok/s | llama.cpp tok/s | ratio |")
    assert out[2] == ("| decode BF16 | 123M | 2 | 125.0 (120.0-130.0) | 100.0 (100.0-100.0) | 1.25 (1.20-1.30) "
                      "| 88% (86%-90%) | - | >= 1.2x, >= 85% roofline | PASS |")
    assert "skipped: mnemo run has no --weights-dtype" in out[3]


def _tokenizer_json(regex):
    return {"added_tokens": [{"id": 3, "content": "<|begin_of_text|>", "special": True, "normalized": False}],
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}


def test_converter_stub_tokenizer(tmp_path):
    (tmp_path / "tokenizer.json").write_text(json.dumps(_tokenizer_json(convert.LLAMA3_SPLIT)))
    tok = convert.StubTokenizer(tmp_path)
    assert tok.pre_name == "llama-bpe"
    assert tok.vocab == {"a": 0, "b": 1, "ab": 2, "<|begin_of_text|>": 3}
    assert tok.get_added_vocab() == {"<|begin_of_text|>": 3}
    assert tok.added_tokens_decoder[3].special and not tok.added_tokens_decoder[3].normalized
    assert tok.decode(tok.encode("<|begin_of_text|>", add_special_tokens=False)) == "<|begin_of_text|>"


def test_converter_refuses_an_unknown_pre_tokenizer():
    with pytest.raises(ValueError):
        convert.pre_tokenizer_name(_tokenizer_json(r"\s+|\w+"))


# mnemo run --profile's stderr (captured, shortened): a stats line, then one table per phase.
PROFILE_STDERR = """prefill (8 tokens):
op                 calls   total ms  share   MB moved     GB/s  GFLOP/s  % peak
qkv matmul            12       3.10  40.0%       42.5     13.7     11.2     34%
total                  1       7.75 100.0%       80.1     10.3               25%
decode (127 tokens; other: the wall time between tokens no op accounts for):
op                 calls   total ms  share   MB moved     GB/s  GFLOP/s  % peak
gate/up matmul      1524     300.00  31.4%     4756.3     26.3     26.3     66%
other                  0      16.33   3.8%        0.0
total                127     955.00 100.0%    15133.4     24.3              61%
"""


def test_profile_section_takes_one_phase_through_its_total():
    decode = measure.profile_section(PROFILE_STDERR, "decode")
    assert decode[0].startswith("decode (127 tokens")
    assert decode[-1].startswith("total") and "955.00" in decode[-1]
    assert any(line.startswith("gate/up matmul") for line in decode)
    assert not any("qkv" in line for line in decode)
    prefill = measure.profile_section(PROFILE_STDERR, "prefill")
    assert len(prefill) == 4 and prefill[-1].startswith("total") and "7.75" in prefill[-1]
    assert measure.profile_section("no profile here\n", "decode") == []
