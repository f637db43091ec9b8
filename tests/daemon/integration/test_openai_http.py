"""The OpenAI-compatible HTTP API (the stock npm client is tested in
examples/openai); auth on every route but /healthz."""
import asyncio
import json
import urllib.request

import pytest
import websockets

from wsclient import CALC_TOOL, Conn


def test_plain_completion_shape(daemon):
    st, body = daemon.request("POST", "/v1/chat/completions", {
        "model": "anything", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 5, "temperature": 0, "seed": 3})
    assert st == 200, body
    j = json.loads(body)
    assert j["object"] == "chat.completion" and j["id"].startswith("chatcmpl-")
    choice = j["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    u = j["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and u["completion_tokens"] <= 5
    assert "cached_tokens" in u["prompt_tokens_details"]
    # The same prompt again is served from the prefix cache.
    st, body = daemon.request("POST", "/v1/chat/completions", {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}], "max_tokens": 5})
    assert json.loads(body)["usage"]["prompt_tokens_details"]["cached_tokens"] >= 16
    st, body = daemon.request("GET", "/v1/models")
    assert st == 200 and json.loads(body)["data"][0]["object"] == "model"
    st, metrics = daemon.request("GET", "/metrics")
    values = {l.split(" ")[0]: float(l.split(" ")[1]) for l in metrics.splitlines() if l and not l.startswith("#")}
    assert values["mnemo_responses_total"] == 2
    assert values["mnemo_cached_tokens_total"] >= 16
    assert values['mnemo_requests_total{api="chat_completions"}'] == 2
    assert values["mnemo_time_to_first_token_seconds_count"] == 2
    assert values["mnemo_kv_blocks_cached"] > 0


def test_streamed_tool_call(daemon):
    req = urllib.request.Request(daemon.http + "/v1/chat/completions", method="POST", data=json.dumps({
        "messages": [{"role": "user", "content": "calc 2+2"}], "tools": [CALC_TOOL], "tool_choice": "required",
        "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 600}).encode())
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [l.decode().strip() for l in r if l.strip()]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(l[6:]) for l in lines[:-1]]
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert len(calls) == 1 and calls[0]["index"] == 0 and calls[0]["function"]["name"] == "calc"
    assert "expr" in json.loads(calls[0]["function"]["arguments"])
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish == ["tool_calls"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_api_key(daemon_factory):
    d = daemon_factory("--api-key", "sekret")
    st, body = d.request("GET", "/v1/models")
    assert st == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    st, _ = d.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong"})
    assert st == 401
    st, _ = d.request("GET", "/v1/models", headers={"Authorization": "Bearer sekret"})
    assert st == 200
    st, _ = d.request("GET", "/healthz")
    assert st == 200

    async def ws():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await Conn.open(d.ws)
        assert e.value.status_code == 401
        c = await Conn.open(d.ws, headers={"Authorization": "Bearer sekret"})
        assert (await c.rpc({"type": "ping"}))["type"] == "pong"
        await c.close()
    asyncio.run(ws())
