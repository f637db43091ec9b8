"""POST /v1/chat/completions' sampling and choice fields against a real
mnemod: frequency/presence penalties, logit_bias, logprobs/top_logprobs
(plain and streamed), n choices sharing the prompt's cached blocks, the legacy
functions/function_call, GET /v1/models/{id}, and the 400s naming the field.

The built-in model is random: the tests assert what the fields must do to
any model's greedy output, using its tokenizer.json to name token ids."""
import json
import math
import urllib.request

import pytest

USER = [{"role": "user", "content": "tell me a story about a lighthouse keeper and the sea"}]
CALC = {"name": "calc", "description": "evaluates", "parameters": {
    "type": "object", "properties": {"expr": {"type": "string"}}, "required": ["expr"]}}


def byte_to_unicode():
    # GPT-2's byte-level alphabet, as the tokenizer's vocab spells bytes.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@pytest.fixture(scope="module")
def token_id(model_dir):
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    assert tok["model"]["type"] == "BPE"  # byte-level, as the built-in model's
    vocab, b2u = tok["model"]["vocab"], byte_to_unicode()
    return lambda entry: vocab["".join(b2u[b] for b in entry["bytes"])]


def chat(daemon, status=200, **fields):
    body = {"messages": USER, "temperature": 0, "max_tokens": 12}
    body.update(fields)
    st, text = daemon.request("POST", "/v1/chat/completions", body)
    assert st == status, text
    return json.loads(text)


def stream(daemon, **fields):
    body = {"messages": USER, "temperature": 0, "max_tokens": 12, "stream": True,
            "stream_options": {"include_usage": True}}
    body.update(fields)
    req = urllib.request.Request(daemon.http + "/v1/chat/completions", method="POST", data=json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=120) as r:
        lines = [l.decode().strip() for l in r if l.strip()]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(l[6:]) for l in lines[:-1]]


def entries(j, i=0):
    return j["choices"][i]["logprobs"]["content"]


def test_logprobs_shape(daemon):
    j = chat(daemon, logprobs=True, top_logprobs=5)
    content = entries(j)
    assert len(content) == j["usage"]["completion_tokens"] > 0
    for e in content:
        assert e["logprob"] <= 0 and len(e["top_logprobs"]) == 5
        tops = [t["logprob"] for t in e["top_logprobs"]]
        assert tops == sorted(tops, reverse=True) and all(t <= 0 for t in tops)
        # Greedy: the chosen token is the most likely one.
        assert e["top_logprobs"][0]["bytes"] == e["bytes"] and e["top_logprobs"][0]["logprob"] == e["logprob"]
        assert sum(math.exp(t) for t in tops) <= 1.0001
    # The tokens spell the message.
    text = b"".join(bytes(e["bytes"]) for e in content).decode("utf-8", "replace")
    assert text == j["choices"][0]["message"]["content"]
    # logprobs alone: no alternatives; not asked: null.
    assert all(e["top_logprobs"] == [] for e in entries(chat(daemon, logprobs=True, max_tokens=3)))
    assert chat(daemon, max_tokens=3)["choices"][0]["logprobs"] is None


def test_streamed_logprobs_concatenate_to_the_plain_ones(daemon):
    chat(daemon, max_tokens=1)  # both below then find the prompt cached
    plain = entries(chat(daemon, logprobs=True, top_logprobs=2))
    chunks = stream(daemon, logprobs=True, top_logprobs=2)
    streamed = []
    for c in chunks:
        if not c["choices"]:
            continue
        ch = c["choices"][0]
        if ch["logprobs"]:
            got = ch["logprobs"]["content"]
            streamed += got
            # A chunk carries the tokens whose text it delivers (a token
            # holding part of a character rides with the one completing it).
            text = b"".join(bytes(e["bytes"]) for e in got)
            if ch["delta"].get("content") is not None:
                assert ch["delta"]["content"] == text.decode("utf-8", "replace")
    assert [e["bytes"] for e in streamed] == [e["bytes"] for e in plain]
    # The numbers agree up to float noise (batching, chunking), which may
    # swap near-tied runners-up: their logprobs are compared, not their bytes.
    assert all(abs(a["logprob"] - b["logprob"]) < 1e-2 for a, b in zip(streamed, plain))
    assert all(abs(a["top_logprobs"][1]["logprob"] - b["top_logprobs"][1]["logprob"]) < 1e-2
               for a, b in zip(streamed, plain))
    assert chunks[-1]["usage"]["completion_tokens"] == len(streamed)


def test_logit_bias_bans_and_forces(daemon, token_id):
    base = entries(chat(daemon, logprobs=True, top_logprobs=5, max_tokens=4))
    first = token_id(base[0])
    # -100 bans the greedy first token: the runner-up takes its place.
    banned = entries(chat(daemon, logprobs=True, max_tokens=4, logit_bias={str(first): -100}))
    assert banned[0]["bytes"] == base[0]["top_logprobs"][1]["bytes"]
    assert all(token_id(e) != first for e in banned)
    # +100 on an unlikely token makes every generated token that token.
    forced = token_id(base[0]["top_logprobs"][4])
    j = chat(daemon, logprobs=True, max_tokens=6, logit_bias={str(forced): 100})
    assert [token_id(e) for e in entries(j)] == [forced] * 6 and j["usage"]["completion_tokens"] == 6


def test_frequency_penalty_stops_a_token_repeating(daemon, token_id):
    base = entries(chat(daemon, logprobs=True, top_logprobs=4, max_tokens=2))
    x = token_id(base[0]["top_logprobs"][3])
    # A bias of 8 makes x the greedy choice at every step...
    biased = [token_id(e) for e in entries(chat(daemon, logprobs=True, logit_bias={str(x): 8}))]
    assert biased == [x] * 12
    # ...until each occurrence costs 2: after four it has lost the bias.
    penalised = [token_id(e) for e in entries(chat(daemon, logprobs=True, logit_bias={str(x): 8},
                                                   frequency_penalty=2))]
    assert 1 <= penalised.count(x) <= 6 and penalised[0] == x
    # The presence penalty costs a token once, whatever its count.
    present = [token_id(e) for e in entries(chat(daemon, logprobs=True, logit_bias={str(x): 8},
                                                 presence_penalty=2))]
    assert present[0] == x and penalised.count(x) <= present.count(x)


def metric(daemon, name):
    _, text = daemon.request("GET", "/metrics")
    return next(float(l.split(" ")[1]) for l in text.splitlines() if l.startswith(name + " "))


def test_n_choices_share_the_cached_prompt(daemon):
    cached_before = metric(daemon, "mnemo_cached_tokens_total")
    j = chat(daemon, n=3, temperature=1, seed=7, logprobs=True, max_tokens=8)
    assert [c["index"] for c in j["choices"]] == [0, 1, 2]
    per_choice = [len(entries(j, i)) for i in range(3)]
    u = j["usage"]
    # The prompt counted once, every choice's completion tokens summed.
    assert u["completion_tokens"] == sum(per_choice) and u["total_tokens"] == u["prompt_tokens"] + sum(per_choice)
    # seed + i: the choices are different samples.
    assert len({c["message"]["content"] for c in j["choices"]}) > 1
    # Choices 1 and 2 found the prompt choice 0 computed: all but its last block.
    cached = metric(daemon, "mnemo_cached_tokens_total") - cached_before
    assert cached >= 2 * (u["prompt_tokens"] - 16), (cached, u)

    chunks = stream(daemon, n=2, max_tokens=4)
    finishes = {c["choices"][0]["index"]: c["choices"][0]["finish_reason"] for c in chunks
                if c["choices"] and c["choices"][0]["finish_reason"]}
    assert finishes == {0: "length", 1: "length"}
    text = {i: "".join(c["choices"][0]["delta"].get("content", "") for c in chunks
                       if c["choices"] and c["choices"][0]["index"] == i) for i in (0, 1)}
    # Greedy: both choices say the same.
    assert text[0] == text[1] != ""
    assert chunks[-1]["usage"]["completion_tokens"] == 8


def test_legacy_functions_round_trip(daemon):
    j = chat(daemon, functions=[CALC], function_call={"name": "calc"}, max_tokens=200,
             messages=[{"role": "user", "content": "what is 2+2?"}])
    choice = j["choices"][0]
    msg = choice["message"]
    assert choice["finish_reason"] == "function_call" and "tool_calls" not in msg and msg["content"] is None
    assert msg["function_call"]["name"] == "calc" and "expr" in json.loads(msg["function_call"]["arguments"])
    # The call and its result go back in the legacy shapes.
    j = chat(daemon, functions=[CALC], max_tokens=4, messages=[
        {"role": "user", "content": "what is 2+2?"},
        {"role": "assistant", "content": None, "function_call": msg["function_call"]},
        {"role": "function", "name": "calc", "content": "4"}])
    assert j["choices"][0]["message"]["role"] == "assistant"
    chunks = stream(daemon, functions=[CALC], function_call={"name": "calc"}, max_tokens=200,
                    messages=[{"role": "user", "content": "what is 2+2?"}])
    calls = [c["choices"][0]["delta"]["function_call"] for c in chunks
             if c["choices"] and "function_call" in c["choices"][0]["delta"]]
    assert len(calls) == 1 and calls[0]["name"] == "calc"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["function_call"]
    # function_call "none" keeps the functions but calls none.
    j = chat(daemon, functions=[CALC], function_call="none", max_tokens=4)
    assert "function_call" not in j["choices"][0]["message"]


def test_model_by_id(daemon):
    st, body = daemon.request("GET", "/v1/models")
    model = json.loads(body)["data"][0]
    st, body = daemon.request("GET", "/v1/models/" + model["id"])
    assert st == 200 and json.loads(body) == model
    st, body = daemon.request("GET", "/v1/models/gpt-nonexistent")
    err = json.loads(body)["error"]
    assert st == 404 and err["code"] == "model_not_found" and err["type"] == "invalid_request_error"
    assert "gpt-nonexistent" in err["message"]


@pytest.mark.parametrize("fields,param", [
    ({"frequency_penalty": 2.5}, "frequency_penalty"),
    ({"presence_penalty": -3}, "presence_penalty"),
    ({"presence_penalty": "high"}, "presence_penalty"),
    ({"logit_bias": {"7": 101}}, "logit_bias"),
    ({"logit_bias": {"seven": 1}}, "logit_bias"),
    ({"logit_bias": {"-1": 1}}, "logit_bias"),
    ({"logit_bias": {"99999999": 1}}, "logit_bias"),  # outside the vocabulary
    ({"logit_bias": [1]}, "logit_bias"),
    ({"logprobs": "yes"}, "logprobs"),
    ({"top_logprobs": 3}, "top_logprobs"),  # without logprobs
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"n": 0}, "n"),
    ({"n": 9}, "n"),
    ({"n": 1.5}, "n"),
    ({"functions": [{"name": "bad name"}]}, "functions"),
    ({"functions": [CALC], "function_call": {"name": "other"}}, "function_call"),
    ({"functions": [CALC], "tools": [{"type": "function", "function": CALC}]}, "functions"),
])
def test_bad_values_are_400_naming_the_field(daemon, fields, param):
    j = chat(daemon, status=400, **fields)
    assert j["error"]["param"] == param and j["error"]["type"] == "invalid_request_error", j
