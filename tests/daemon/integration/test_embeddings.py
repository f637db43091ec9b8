"""POST /v1/embeddings: the served model's mean hidden state, unit length;
strings and token ids, batches, base64, the bounds, errors naming params,
--embedding-layer, and chat completions served while embeddings compute."""
import base64
import json
import math
import os
import struct
import subprocess
import threading
import time

import pytest

from conftest import MNEMOD


def embed(d, **body):
    st, out = d.request("POST", "/v1/embeddings", body)
    assert st == 200, out
    return json.loads(out)


def vectors(r):
    return [e["embedding"] for e in r["data"]]


def hidden_size(model_dir):
    return json.loads((model_dir / "config.json").read_text())["hidden_size"]


def tokenize(model_dir, text):
    """The served tokenizer's ids for text, no special tokens (mnemo tokenize sits beside mnemod)."""
    mnemo = os.path.join(os.path.dirname(MNEMOD), "mnemo")
    if not os.path.exists(mnemo):
        pytest.skip("the mnemo CLI is not beside mnemod")
    out = subprocess.run([mnemo, "tokenize", "--model", str(model_dir), "--text", text], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def test_shape_unit_norm_and_usage(daemon, model_dir):
    r = embed(daemon, model="anything", input="The quick brown fox")
    assert r["object"] == "list" and r["model"] == "anything"
    [e] = r["data"]
    assert e["object"] == "embedding" and e["index"] == 0
    v = e["embedding"]
    assert len(v) == hidden_size(model_dir)
    assert math.sqrt(sum(x * x for x in v)) == pytest.approx(1.0, abs=1e-5)
    u = r["usage"]
    assert u["prompt_tokens"] == u["total_tokens"] == len(tokenize(model_dir, "The quick brown fox"))
    # dimensions equal to the native size is accepted.
    assert vectors(embed(daemon, input="The quick brown fox", dimensions=len(v))) == [v]


def test_text_and_its_token_ids_give_the_same_vector(daemon, model_dir):
    text = "Memory is the residue of thought."
    ids = tokenize(model_dir, text)
    by_text = embed(daemon, input=text)
    by_ids = embed(daemon, input=ids)
    by_id_lists = embed(daemon, input=[ids, ids[:3]])
    assert by_ids["usage"]["prompt_tokens"] == len(ids)
    assert vectors(by_ids)[0] == vectors(by_text)[0]
    assert vectors(by_id_lists)[0] == vectors(by_text)[0]
    assert by_id_lists["usage"]["prompt_tokens"] == len(ids) + 3


def test_special_token_text_is_plain_text(daemon, model_dir):
    # The chat template's control tokens written by a client stay text. The
    # CLI's default encoding matches special-token text (one id per marker);
    # the daemon's must spell the markers out in ordinary tokens.
    text = "<|begin_of_text|><|eot_id|> hello"
    matched = tokenize(model_dir, text)
    r = embed(daemon, input=text)
    assert r["usage"]["prompt_tokens"] > len(matched) + 4
    assert vectors(r) != vectors(embed(daemon, input=matched))


def test_batch_order_and_indexes(daemon):
    texts = ["apples and pears", "a distributed key-value store", "apples and pears", "the tide came in"]
    r = embed(daemon, input=texts)
    assert [e["index"] for e in r["data"]] == [0, 1, 2, 3]
    v = vectors(r)
    for i, t in enumerate(texts):
        assert vectors(embed(daemon, input=t))[0] == pytest.approx(v[i], abs=1e-6), t
    assert v[0] == v[2]  # identical texts, identical vectors
    for i, j in [(0, 1), (0, 3), (1, 3)]:
        assert max(abs(a - b) for a, b in zip(v[i], v[j])) > 1e-3, (i, j)  # different texts differ
    assert r["usage"]["prompt_tokens"] == sum(embed(daemon, input=t)["usage"]["prompt_tokens"] for t in texts)


def test_base64_is_the_same_float32_values(daemon, model_dir):
    texts = ["first text", "second, longer text here"]
    plain = vectors(embed(daemon, input=texts, encoding_format="float"))
    b64 = vectors(embed(daemon, input=texts, encoding_format="base64"))
    n = hidden_size(model_dir)
    for p, b in zip(plain, b64):
        assert isinstance(b, str)
        raw = base64.b64decode(b)
        assert len(raw) == 4 * n
        decoded = struct.unpack(f"<{n}f", raw)
        # The float text is the shortest that reads back as the same float32.
        assert list(decoded) == [struct.unpack("<f", struct.pack("<f", x))[0] for x in p]


@pytest.mark.parametrize("body, param", [
    ({}, "input"),
    ({"input": ""}, "input"),
    ({"input": []}, "input"),
    ({"input": 5}, "input"),
    ({"input": {"text": "x"}}, "input"),
    ({"input": ["a", ""]}, "input"),
    ({"input": ["a", 1]}, "input"),
    ({"input": [1, "a"]}, "input"),
    ({"input": [[1, 2], []]}, "input"),
    ({"input": [1, -1]}, "input"),
    ({"input": [[1, 10 ** 9]]}, "input"),
    ({"input": [1.5]}, "input"),
    ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
    ({"input": "x", "dimensions": 3}, "dimensions"),
    ({"input": "x", "dimensions": "256"}, "dimensions"),
    ({"input": "x", "model": 5}, "model"),
    ({"input": "x", "user": 5}, "user"),
])
def test_bad_requests_name_their_param(daemon, body, param):
    st, out = daemon.request("POST", "/v1/embeddings", body)
    assert st == 400, out
    err = json.loads(out)["error"]
    assert err["param"] == param, out
    assert err["type"] == "invalid_request_error"


def test_bounds(daemon, model_dir):
    # More inputs than OpenAI's 2048.
    st, out = daemon.request("POST", "/v1/embeddings", {"input": ["x"] * 2049})
    assert st == 400 and json.loads(out)["error"]["param"] == "input", out
    # One input longer than the model's context (4096 for the built-in model) or 8192.
    context = json.loads((model_dir / "config.json").read_text())["max_position_embeddings"]
    st, out = daemon.request("POST", "/v1/embeddings", {"input": [[5] * (min(context, 8192) + 1)]})
    assert st == 400 and json.loads(out)["error"]["param"] == "input", out
    # Too many tokens in all: refused before any is computed.
    t0 = time.time()
    st, out = daemon.request("POST", "/v1/embeddings", {"input": [[5] * 2000] * 33})
    assert st == 413, out
    err = json.loads(out)["error"]
    assert err["param"] == "input" and "66000" in err["message"]
    assert time.time() - t0 < 5
    # The daemon is fine afterwards.
    assert len(embed(daemon, input="still here")["data"]) == 1
    st, out = daemon.request("GET", "/v1/embeddings")
    assert st == 405


def test_chat_completions_are_served_while_embeddings_compute(daemon):
    big = {"input": [[7 + i] * 2000 for i in range(12)]}  # 24k tokens: seconds on one thread
    done = {}

    def run_embeddings():
        done["embeddings"] = daemon.request("POST", "/v1/embeddings", big)
        done["embeddings_at"] = time.time()

    t = threading.Thread(target=run_embeddings)
    t.start()
    time.sleep(0.3)  # the embeddings are under way
    st, out = daemon.request("POST", "/v1/chat/completions",
                             {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0})
    chat_at = time.time()
    assert st == 200, out
    assert json.loads(out)["choices"][0]["message"]["content"] is not None
    t.join(120)
    st, out = done["embeddings"]
    assert st == 200, out
    assert len(json.loads(out)["data"]) == 12
    assert chat_at < done["embeddings_at"], "the chat completion waited for the embeddings"
    st, metrics = daemon.request("GET", "/metrics")
    assert 'mnemo_requests_total{api="embeddings"} 1' in metrics


def test_embedding_layer_flag(daemon_factory, model_dir, tmp_path):
    text = "which layer speaks"
    default = vectors(embed(daemon_factory(), input=text))[0]
    layers = json.loads((model_dir / "config.json").read_text())["num_hidden_layers"]
    middle = vectors(embed(daemon_factory("--embedding-layer", str((layers + 1) // 2)), input=text))[0]
    first = vectors(embed(daemon_factory("--embedding-layer", "1"), input=text))[0]
    assert middle == default  # the default is the middle layer
    assert max(abs(a - b) for a, b in zip(first, default)) > 1e-3
    # A layer the model does not have stops mnemod at start, naming the flag.
    res = subprocess.run([MNEMOD, "--port", "0", "--data-dir", str(tmp_path / "bad"), "--model", str(model_dir),
                          "--threads", "1", "--kv-cache-bytes", "64M", "--embedding-layer", str(layers + 1)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "--embedding-layer" in res.stderr
