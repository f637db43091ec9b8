"""Agent programs and their KV across tool calls (Continuum, --kv-retention):
an OpenAI-style tool round trip with no extra fields is inferred as one
program; under memory pressure its second turn finds its KV kept (fixed) and
not with none; Continuum's statistics survive a restart; a client that never
comes back holds its KV only for the TTL; a bad flag value is refused."""
import json
import re
import subprocess
import time

from conftest import MNEMOD
from wsclient import CALC_TOOL

BLOCK = 16


def metrics(d):
    st, body = d.request("GET", "/metrics")
    assert st == 200
    return {l.split(" ")[0]: float(l.split(" ")[1]) for l in body.splitlines() if l and not l.startswith("#")}


def wait_metric(d, name, want, limit=5):
    """The engine publishes its counters at the end of a step: a scrape right
    after a response may precede them."""
    start = time.time()
    while True:
        m = metrics(d)
        if m[name] == want or time.time() - start > limit:
            return m
        time.sleep(0.02)


def chat(d, body):
    st, out = d.request("POST", "/v1/chat/completions", body)
    assert st == 200, out
    return json.loads(out)


def tool_round(d, filler=None):
    """Turn 1 ends calling calc; filler(conversation_blocks) runs while the
    "tool" does; turn 2 sends the result back. Returns (turn1, turn2)."""
    messages = [{"role": "system", "content": "You are a careful calculator agent."},
                {"role": "user", "content": "What is 17 * 23? Use the calculator tool, then answer."}]
    first = chat(d, {"messages": messages, "tools": [CALC_TOOL], "tool_choice": "required", "max_tokens": 300,
                     "temperature": 0, "seed": 1})
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    call = first["choices"][0]["message"]
    conversation = first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
    if filler:
        filler(-(-conversation // BLOCK))
    messages += [call, {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "content": "391"}]
    second = chat(d, {"messages": messages, "tools": [CALC_TOOL], "max_tokens": 4, "temperature": 0, "seed": 1})
    return first, second


def make_filler(d, pool_blocks):
    """Two unrelated requests while the tool runs: Y, then F, sized so that
    F needs more than the blocks the program's KV leaves free besides Y's plus
    a third of the program's, and no more than what the program's KV leaves:
    the LRU (none) evicts the program's blocks (older than Y's); a kept
    program is not touched. Two probes first give F's tokens per character."""
    def tokens(text):
        r = chat(d, {"messages": [{"role": "user", "content": text}], "max_tokens": 1})
        return r["usage"]["prompt_tokens"], r["usage"]["prompt_tokens_details"]["cached_tokens"]
    (a, _), (b, shared_tokens) = tokens("pa " + "yk " * 40), tokens("pb " + "yk " * 140)
    slope, intercept = (b - a) / 100, a - 40 * (b - a) / 100
    shared = shared_tokens // BLOCK  # the template's leading blocks (default system header)

    def run(conv_blocks):
        y_prompt, _ = tokens("yy " + "yk " * 180)
        y_blocks = -(-(y_prompt + 1) // BLOCK) - shared
        free_besides = pool_blocks - conv_blocks - y_blocks - shared
        third = conv_blocks // 3
        target = free_besides + third + (y_blocks - third) // 2
        units = int(((target + shared) * BLOCK - BLOCK // 2 - intercept) / slope)
        f_prompt, f_cached = tokens("ff " + "yk " * units)
        f_blocks = -(-(f_prompt + 1) // BLOCK) - f_cached // BLOCK
        print(f"pool {pool_blocks} conversation {conv_blocks} Y {y_blocks} free besides {free_besides} F {f_blocks} "
              f"(target {target})")
        assert free_besides + third < f_blocks <= free_besides + y_blocks
    return run


def pool_blocks(d):
    return int(re.search(r"KV pool of (\d+) tokens", d.log.read_text()).group(1)) // BLOCK


def test_tool_round_trip_keeps_kv_under_pressure(daemon_factory):
    kept = {}
    for mode in ("fixed:30", "none"):
        d = daemon_factory("--kv-cache-bytes", "6M", "--kv-retention", mode)
        first, second = tool_round(d, make_filler(d, pool_blocks(d)))
        # The second turn's prompt gives the call back as generated, so it
        # starts with the first turn's whole KV: its prompt and generation
        # (the last generated token was never fed back), in whole blocks.
        kv = first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"] - 1
        kept[mode] = (second["usage"]["prompt_tokens_details"]["cached_tokens"], kv // BLOCK * BLOCK)
        m = metrics(d)
        if mode != "none":
            assert m["mnemo_retention_hits"] >= 1, m
            assert m["mnemo_reload_seconds_saved_total"] > 0, m
            assert m["mnemo_ttl_seconds_count"] >= 1
        log = d.log.read_text()
        assert re.search(r"program \d+ turn 0 ended calling 'calc': KV (of \d+ tokens kept for 30\.000 s|not kept)", log), log
        d.stop()
    print(kept)
    cached, need = kept["fixed:30"]
    assert cached >= need, kept
    cached, need = kept["none"]
    assert cached < need, kept


def test_continuum_declines_when_reload_is_cheap(daemon):
    # The built-in model prefills a few hundred tokens in milliseconds and
    # nothing has queued (T = 0): B = T + reload < 1, so the cold start keeps
    # nothing, and the log says why.
    tool_round(daemon)
    log = daemon.log.read_text()
    assert "KV retention: continuum" in log
    assert re.search(r"turn 0 ended calling 'calc': KV not kept: cold start ln\(B\), B=[0-9.e-]+ s", log), log
    # The decision to keep nothing reaches the engine's loop asynchronously
    # (Engine::retain takes effect on the loop thread): wait for it.
    m = wait_metric(daemon, "mnemo_programs_parked", 0)
    assert m["mnemo_programs_parked"] == 0, m


def test_statistics_survive_a_restart(daemon_factory, tmp_path):
    data = tmp_path / "stats"
    d = daemon_factory(data_dir=data)
    for _ in range(2):
        messages = [{"role": "user", "content": "add 2 and 2 with the tool"}]
        first = chat(d, {"messages": messages, "tools": [CALC_TOOL], "tool_choice": "required", "max_tokens": 300})
        call = first["choices"][0]["message"]
        time.sleep(0.3)  # the tool runs
        messages += [call, {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "content": "4"}]
        chat(d, {"messages": messages, "tools": [CALC_TOOL], "tool_choice": "none", "max_tokens": 4})
    m = metrics(d)
    assert m["mnemo_ttl_tool_samples"] == 2, m
    assert m["mnemo_ttl_programs_finished"] == 2
    assert d.stop() == 0
    d2 = daemon_factory(data_dir=data)
    m = metrics(d2)
    assert m["mnemo_ttl_tool_samples"] == 2, m
    assert m["mnemo_ttl_programs_finished"] == 2
    assert "statistics loaded from the store: 2 tool durations over 1 tools, 2 finished programs" in d2.log.read_text()


def test_client_that_never_comes_back_holds_kv_for_the_ttl_only(daemon_factory):
    d = daemon_factory("--kv-retention", "fixed:1.5")
    chat(d, {"messages": [{"role": "user", "content": "calc 1+1 and never return"}], "tools": [CALC_TOOL],
             "tool_choice": "required", "max_tokens": 300})
    m = wait_metric(d, "mnemo_programs_parked", 1)
    assert m["mnemo_programs_parked"] == 1, m
    assert m["mnemo_programs_parked_blocks"] > 0
    start = time.time()
    while metrics(d)["mnemo_programs_parked"] != 0:
        assert time.time() - start < 15, "the parked program outlived its TTL"
        time.sleep(0.1)
    m = metrics(d)
    assert m["mnemo_programs_parked_blocks"] == 0
    assert m["mnemo_retention_expiries"] == 1
    assert time.time() - start > 0.5  # it was kept, not dropped at once


def test_bad_retention_value_is_refused(tmp_path):
    r = subprocess.run([MNEMOD, "--data-dir", str(tmp_path), "--kv-retention", "forever"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert "--kv-retention: expected none, fixed, fixed:SECONDS (0 to 3600) or continuum, got 'forever'" in r.stderr
    r = subprocess.run([MNEMOD, "--data-dir", str(tmp_path), "--port", "0"], capture_output=True, text=True,
                       timeout=30, env={"MNEMO_KV_RETENTION": "fixed:-3", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and "MNEMO_KV_RETENTION" in r.stderr


def streamed(d, body):
    """A streamed completion put back together as the client sees it."""
    st, out = d.request("POST", "/v1/chat/completions", dict(body, stream=True, stream_options={"include_usage": True}))
    assert st == 200, out
    message, calls, usage, finish = {"role": "assistant", "content": ""}, {}, None, None
    for line in out.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            finish = choice.get("finish_reason") or finish
            delta = choice["delta"]
            message["content"] += delta.get("content") or ""
            for c in delta.get("tool_calls", []):
                call = calls.setdefault(c["index"], {"id": "", "type": "function",
                                                     "function": {"name": "", "arguments": ""}})
                call["id"] += c.get("id", "")
                call["function"]["name"] += c.get("function", {}).get("name", "")
                call["function"]["arguments"] += c.get("function", {}).get("arguments", "")
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
        message["content"] = message["content"] or None
    return {"choices": [{"message": message, "finish_reason": finish}], "usage": usage}


def test_tool_round_trip_reuses_the_whole_conversation(daemon):
    # No memory pressure: the LRU keeps everything, and the call, given back
    # as the model generated it, matches token for token (the template's own
    # serialisation of it would not).
    for send in (chat, streamed):
        messages = [{"role": "user", "content": f"Use the tool for 6 * 7 ({send.__name__})."}]
        first = send(daemon, {"messages": messages, "tools": [CALC_TOOL], "tool_choice": "required",
                              "max_tokens": 300, "temperature": 0})
        assert first["choices"][0]["finish_reason"] == "tool_calls"
        call = first["choices"][0]["message"]
        messages += [call, {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "content": "42"}]
        second = send(daemon, {"messages": messages, "tools": [CALC_TOOL], "max_tokens": 2})
        kv = first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"] - 1
        cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
        assert cached >= kv // BLOCK * BLOCK, (send.__name__, cached, kv)
        # The message edited by the client is rendered by the template: the
        # KV matches only up to the call.
        call["tool_calls"][0]["function"]["arguments"] = json.dumps({"expression": "6*7", "edited": True})
        third = send(daemon, {"messages": messages, "tools": [CALC_TOOL], "max_tokens": 2})
        assert third["usage"]["prompt_tokens_details"]["cached_tokens"] < kv // BLOCK * BLOCK


def test_reload_from_the_host_tier_is_its_copy_time(daemon_factory):
    # Released KV goes to the host tier; once a copy has been timed, a turn
    # whose KV fits the tier is priced by the copy, not by a prefill.
    d = daemon_factory("--host-kv-bytes", "64M")
    for _ in range(2):
        tool_round(d)
    m = wait_metric(d, "mnemo_host_tier_puts", 2)
    assert m["mnemo_host_tier_puts"] >= 1, m
    assert m["mnemo_host_tier_copy_bytes_total"] >= 2 ** 20, m
    assert m["mnemo_host_tier_copy_seconds_total"] > 0
    log = d.log.read_text()
    assert re.search(r"turn 0 ended calling 'calc': KV not kept: .* by prefill\)", log), log
    assert re.search(r"turn 0 ended calling 'calc': KV not kept: .* by host-tier copy\)", log), log
