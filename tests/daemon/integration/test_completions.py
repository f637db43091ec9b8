"""POST /v1/completions: a raw prompt (text or token ids) continued without a
chat template; n, echo, the legacy logprobs, streaming; errors name params."""
import json

import pytest


def complete(d, **body):
    st, out = d.request("POST", "/v1/completions", body)
    assert st == 200, out
    return json.loads(out)


def test_text_prompt_and_its_logprobs(daemon):
    r = complete(daemon, prompt="Once upon a time", max_tokens=6, temperature=0, logprobs=3)
    assert r["object"] == "text_completion"
    c = r["choices"][0]
    lp = c["logprobs"]
    assert len(lp["tokens"]) == r["usage"]["completion_tokens"] == 6
    assert "".join(lp["tokens"]) == c["text"]
    assert lp["text_offset"] == [sum(len(t) for t in lp["tokens"][:i]) for i in range(6)]
    for chosen, value, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
        assert value <= 0 and len(top) == 3
        assert max(top.values()) == pytest.approx(value, abs=1e-4)  # greedy: the best is the one chosen
    # No chat template: the prompt is only its own tokens (and BOS).
    assert r["usage"]["prompt_tokens"] <= 8


def test_token_ids_echo_and_the_default_length(daemon):
    first = complete(daemon, prompt="Hello world", max_tokens=2, temperature=0)
    r = complete(daemon, prompt=[[5, 6, 7]], echo=True, temperature=0)
    assert r["usage"]["prompt_tokens"] == 3
    assert r["usage"]["completion_tokens"] == 16  # OpenAI's default max_tokens for this endpoint
    assert r["choices"][0]["finish_reason"] == "length"
    assert first["choices"][0]["text"] != ""


def test_n_choices_and_the_stream(daemon):
    r = complete(daemon, prompt="The sky is", max_tokens=4, n=3, seed=7)
    assert [c["index"] for c in r["choices"]] == [0, 1, 2]
    assert r["usage"]["completion_tokens"] == 12
    st, out = daemon.request("POST", "/v1/completions", {"prompt": "The sky is", "max_tokens": 4, "temperature": 0,
                                                         "stream": True, "stream_options": {"include_usage": True}})
    assert st == 200
    chunks = [json.loads(l[6:]) for l in out.split("\n") if l.startswith("data: ") and l != "data: [DONE]"]
    assert out.rstrip().endswith("data: [DONE]")
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    plain = complete(daemon, prompt="The sky is", max_tokens=4, temperature=0)
    assert text == plain["choices"][0]["text"]
    assert chunks[-1]["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize("body, param", [
    ({}, "prompt"),
    ({"prompt": 5}, "prompt"),
    ({"prompt": ["a", "b"]}, "prompt"),
    ({"prompt": [1, -2]}, "prompt"),
    ({"prompt": [10 ** 9]}, "prompt"),
    ({"prompt": "x", "logprobs": 6}, "logprobs"),
    ({"prompt": "x", "logprobs": 1, "echo": True}, "echo"),
    ({"prompt": "x", "n": 9}, "n"),
    ({"prompt": "x", "best_of": 3}, "best_of"),
    ({"prompt": "x", "suffix": "end"}, "suffix"),
    ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "x", "temperature": -1}, "temperature"),
    ({"prompt": "x", "frequency_penalty": 3}, "frequency_penalty"),
])
def test_bad_requests_name_their_param(daemon, body, param):
    st, out = daemon.request("POST", "/v1/completions", body)
    assert st == 400, out
    assert json.loads(out)["error"]["param"] == param, out
