"""The Responses API (POST /v1/responses) over plain HTTP: a chain is a
session that survives a restart, a branch forks it, the SSE stream follows
OpenAI's sequence, and every bad request is a 400 naming its param."""
import json

import pytest


def create(d, **body):
    st, out = d.request("POST", "/v1/responses", {"max_output_tokens": 4, "temperature": 0, **body})
    assert st == 200, out
    return json.loads(out)


def items(d, rid, **q):
    query = "&".join(f"{k}={v}" for k, v in q.items())
    st, out = d.request("GET", f"/v1/responses/{rid}/input_items" + (f"?{query}" if query else ""))
    assert st == 200, out
    return json.loads(out)


def test_a_chain_survives_a_restart(daemon_factory, tmp_path):
    d = daemon_factory(data_dir=tmp_path / "data")
    chain = [create(d, input="one")]
    for word in ("two", "three", "four", "five"):
        chain.append(create(d, input=word, previous_response_id=chain[-1]["id"]))
    # Each turn's prompt holds the chain so far, most of it from the cache.
    for prev, nxt in zip(chain, chain[1:]):
        assert nxt["usage"]["input_tokens"] > prev["usage"]["input_tokens"]
        assert nxt["usage"]["input_tokens_details"]["cached_tokens"] >= prev["usage"]["input_tokens"] - 16
    d.stop()
    d.start()
    st, out = d.request("GET", f"/v1/responses/{chain[2]['id']}")
    assert st == 200 and json.loads(out) == chain[2]
    after = create(d, input="six", previous_response_id=chain[-1]["id"])
    assert after["usage"]["input_tokens"] > chain[-1]["usage"]["input_tokens"]
    again = create(d, input="seven", previous_response_id=after["id"])
    assert again["usage"]["input_tokens_details"]["cached_tokens"] >= after["usage"]["input_tokens"] - 16


def test_a_branch_forks_the_chain(daemon):
    a = create(daemon, input="root")
    b = create(daemon, input="left", previous_response_id=a["id"])
    c = create(daemon, input="right", previous_response_id=a["id"])
    # Both continue a; neither sees the other's turn.
    assert b["usage"]["input_tokens"] == c["usage"]["input_tokens"]
    d = create(daemon, input="more", previous_response_id=b["id"])
    assert d["usage"]["input_tokens"] > b["usage"]["input_tokens"]
    assert [i["content"][0]["text"] for i in items(daemon, c["id"])["data"]] == ["right"]


def test_input_items_page_in_both_orders(daemon):
    r = create(daemon, input=[{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "input_text", "text": "b"}]},
                              {"role": "developer", "content": "c"}])
    desc = items(daemon, r["id"])
    assert [i["content"][0]["text"] for i in desc["data"]] == ["c", "b", "a"]
    first = items(daemon, r["id"], order="asc", limit=2)
    assert [i["content"][0]["text"] for i in first["data"]] == ["a", "b"] and first["has_more"]
    rest = items(daemon, r["id"], order="asc", after=first["last_id"])
    assert [i["content"][0]["text"] for i in rest["data"]] == ["c"] and not rest["has_more"]
    assert desc["data"][0]["role"] == "system"


def test_store_false_keeps_nothing(daemon):
    r = create(daemon, input="secret", store=False)
    st, _ = daemon.request("GET", f"/v1/responses/{r['id']}")
    assert st == 404
    assert r["store"] is False


def test_stream_events_are_numbered_and_end_with_the_response(daemon):
    st, out = daemon.request("POST", "/v1/responses", {"input": "hi", "max_output_tokens": 3, "stream": True})
    assert st == 200
    events = []
    for block in out.strip().split("\n\n"):
        lines = dict(l.split(": ", 1) for l in block.split("\n"))
        e = json.loads(lines["data"])
        assert e["type"] == lines["event"]
        events.append(e)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[0]["response"]["status"] == "in_progress"
    assert events[-1]["type"] == "response.incomplete"
    final = events[-1]["response"]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert final["output"][0]["content"][0]["text"] == text
    assert final["usage"]["output_tokens"] == 3
    st, out = daemon.request("GET", f"/v1/responses/{final['id']}")
    assert json.loads(out)["output"] == final["output"]


@pytest.mark.parametrize("body, param", [
    ({}, "input"),
    ({"input": 5}, "input"),
    ({"input": []}, "input"),  # fuzzing
    ({"input": [{"type": "reasoning", "summary": []}]}, "input"),
    ({"input": [{"type": "input_image", "image_url": "x"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input[0].content[0].type"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"input": [{"type": "function_call_output", "call_id": "", "output": "x"}]}, "input[0].call_id"),  # fuzzing
    ({"input": [{"type": "function_call", "call_id": "c", "name": ""}]}, "input[0].name"),
    ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"input": "x", "tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name"),
    ({"input": "x", "tool_choice": "required"}, "tool_choice"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "x", "temperature": 3}, "temperature"),
    ({"input": "x", "previous_response_id": "resp_nope"}, "previous_response_id"),
    ({"input": "x", "metadata": {"k": 1}}, "metadata"),
    ({"input": "x", "truncation": "middle"}, "truncation"),
    ({"input": "x", "conversation": "conv_1"}, "conversation"),
    ({"input": "x", "background": True}, "background"),
])
def test_bad_requests_name_their_param(daemon, body, param):
    st, out = daemon.request("POST", "/v1/responses", body)
    assert st == 400, out
    err = json.loads(out)["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error", err


def test_a_missing_previous_response_has_openais_code(daemon):
    st, out = daemon.request("POST", "/v1/responses", {"input": "x", "previous_response_id": "resp_nope"})
    assert st == 400 and json.loads(out)["error"]["code"] == "previous_response_not_found", out


def test_unknown_routes_and_methods(daemon):
    assert daemon.request("GET", "/v1/responses")[0] == 405
    assert daemon.request("GET", "/v1/responses/resp_nope")[0] == 404
    assert daemon.request("DELETE", "/v1/responses/resp_nope")[0] == 404
    assert daemon.request("GET", "/v1/responses/resp_nope/other")[0] == 404


def test_text_format_json_schema_answers_parse(daemon):
    schema = {"type": "object", "additionalProperties": False, "required": ["city", "days"],
              "properties": {"city": {"type": "string", "maxLength": 10},
                             "days": {"type": "array", "maxItems": 3, "items": {"enum": ["mon", "tue"]}}}}
    r = create(daemon, input="Plan a trip.", max_output_tokens=200,
               text={"format": {"type": "json_schema", "name": "trip", "schema": schema, "strict": True}})
    assert r["status"] == "completed", r
    out = json.loads(r["output"][0]["content"][0]["text"])
    assert set(out) == {"city", "days"} and isinstance(out["city"], str) and len(out["city"]) <= 10
    assert all(d in ("mon", "tue") for d in out["days"]) and len(out["days"]) <= 3
    assert r["text"]["format"]["name"] == "trip"
    obj = create(daemon, input="Anything.", max_output_tokens=200, text={"format": {"type": "json_object"}})
    assert isinstance(json.loads(obj["output"][0]["content"][0]["text"]), dict)


def test_text_format_with_an_unsupported_keyword_names_it(daemon):
    st, out = daemon.request("POST", "/v1/responses", {
        "input": "x", "text": {"format": {"type": "json_schema", "name": "s",
                                          "schema": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^a"}}}}}})
    assert st == 400, out
    err = json.loads(out)["error"]
    assert err["param"].startswith("text.format.schema.properties.code") and "pattern" in err["message"], err


def test_new_chains_count_against_max_sessions(daemon_factory):
    d = daemon_factory("--max-sessions", "2")
    a = create(d, input="one")
    create(d, input="two")
    st, out = d.request("POST", "/v1/responses", {"input": "three", "max_output_tokens": 2})
    assert st == 429 and json.loads(out)["error"]["code"] == "overloaded", out
    create(d, input="more", previous_response_id=a["id"])  # continuing a chain needs no new session
    st, body = d.request("GET", "/metrics")
    assert "mnemo_sessions 2" in body


def test_the_websocket_mode_survives_junk(daemon):
    """Each bad message gets an error event naming what was wrong; the socket
    and the daemon go on, and a good response.create then works."""
    import asyncio
    import websockets

    async def go():
        async with websockets.connect(daemon.ws.replace("/v1/ws", "/v1/responses"), max_size=None) as ws:
            junk = ["not json", "[1, 2]", json.dumps({"type": "session.create"}),
                    json.dumps({"type": "response.create", "input": 5}),
                    json.dumps({"type": "response.create", "input": "x", "tools": [{"type": "web_search"}]}),
                    "[" * 100000 + "]" * 100000]
            answers = []
            for text in junk:
                await ws.send(text)
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            await ws.send(b"\x00\x01 binary")  # not a text frame: the server may close; that is fine
            try:
                await asyncio.wait_for(ws.recv(), 2)
            except Exception:
                pass
        async with websockets.connect(daemon.ws.replace("/v1/ws", "/v1/responses"), max_size=None) as ws:
            await ws.send(json.dumps({"type": "response.create", "input": "hi", "max_output_tokens": 2}))
            while True:
                e = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if e["type"] in ("response.completed", "response.incomplete", "error"):
                    return answers, e

    answers, last = asyncio.run(go())
    assert all(a["type"] == "error" and a["status"] == 400 for a in answers), answers
    assert [a["error"]["param"] for a in answers[2:5]] == ["type", "input", "tools[0].type"]
    assert "deeper" in answers[5]["error"]["message"] or answers[5]["error"]["code"] == "invalid_json", answers[5]
    assert last["type"] == "response.incomplete"


def test_the_websocket_mode_takes_the_next_create_the_moment_a_response_ends(daemon):
    """A client may send its next response.create as soon as it reads the
    previous response's last event (the openai SDK's ResponsesWS does): the
    connection is already free then, every time."""
    import asyncio
    import websockets

    async def go():
        ends, previous = [], None
        async with websockets.connect(daemon.ws.replace("/v1/ws", "/v1/responses"), max_size=None) as ws:
            for i in range(40):
                body = {"type": "response.create", "input": f"turn {i}", "max_output_tokens": 1, "temperature": 0}
                if previous:
                    body["previous_response_id"] = previous
                await ws.send(json.dumps(body))
                while True:
                    e = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if e["type"] in ("response.completed", "response.incomplete", "response.failed", "error"):
                        break
                ends.append(e)
                previous = e.get("response", {}).get("id", previous)
        return ends

    ends = asyncio.run(go())
    assert [e["type"] for e in ends] == ["response.incomplete"] * 40, [e for e in ends if e["type"] == "error"][:1]
    assert ends[-1]["response"]["previous_response_id"] == ends[-2]["response"]["id"]
