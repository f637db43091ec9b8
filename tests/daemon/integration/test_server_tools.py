"""Tools run by mnemod itself (--tools, response.create with server_tools):
the model's call runs in the daemon, tool.start/tool.end go to the client,
the result is stored as a tool message and the next turn follows in the same
response; limits cut a tool that hangs; a session's own tools and names no
file configured never run; a bad tools file stops mnemod with the field."""
import asyncio
import json
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import MNEMOD
from wsclient import CALC_TOOL, Conn, new_session

PY = sys.executable

SHOUT = {"argv": [PY, "-c", "import sys, json; sys.stdout.write(json.load(sys.stdin)['text'].upper())"],
         "description": "Upper-cases a text.",
         "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}
# Measures its own sleep, so the daemon's recorded duration can be checked against it.
NAP = {"argv": [PY, "-c", "import time; t = time.monotonic(); time.sleep(0.3); print(round((time.monotonic() - t) * 1000, 1))"],
       "description": "Sleeps 0.3 s."}
HANG = {"argv": [PY, "-c", "import time; time.sleep(60)"], "description": "Never answers.",
        "limits": {"timeout_ms": 300}}


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def tools_daemon(daemon_factory, tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps({"commands": {"shout": SHOUT, "nap": NAP, "hang": HANG}}))
    return daemon_factory("--tools", str(path))


async def ask(conn, sid, text="hello"):
    m = await conn.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": text}})
    assert m["type"] == "message.appended", m


async def respond(conn, sid, **fields):
    """response.create, then every event up to response.done (or an error)."""
    eid = await conn.send({"type": "response.create", "session_id": sid, **fields})
    events = []
    while True:
        m = await conn.recv()
        events.append(m)
        if m["type"] == "error" and m.get("event_id") == eid or m["type"] == "response.done":
            return events


def of(events, kind):
    return [e for e in events if e["type"] == kind]


def test_a_forced_call_runs_in_the_daemon_and_the_program_goes_on(tools_daemon):
    async def go():
        conn = await Conn.open(tools_daemon.ws)
        sid = await new_session(conn, sampling={"max_tokens": 300, "temperature": 0, "seed": 3})
        await ask(conn, sid, "Shout hello.")
        events = await respond(conn, sid, server_tools=True, max_tool_turns=1,
                               tool_choice={"type": "function", "function": {"name": "shout"}})
        starts, ends, done = of(events, "tool.start"), of(events, "tool.end"), events[-1]
        assert done["type"] == "response.done", done
        assert len(starts) == 1 and len(ends) == 1, events
        call = of(events, "response.tool_call")[0]["tool_call"]
        assert starts[0]["call_id"] == call["id"] and starts[0]["name"] == "shout"
        assert starts[0]["arguments"] == call["arguments"]
        assert ends[0]["status"] == "ok" and "error" not in ends[0], ends[0]
        assert ends[0]["output"] == call["arguments"]["text"].upper()
        assert ends[0]["output_bytes"] == len(ends[0]["output"].encode())
        # tool_choice holds for every turn: the second turn calls again, past
        # max_tool_turns, so the response ends with that call for the client.
        assert done["finish_reason"] == "tool_calls" and done["tool_turns"] == 1
        history = await conn.rpc({"type": "session.get", "session_id": sid})
        roles = [m["role"] for m in history["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant"], roles
        tool_msg = history["messages"][2]
        assert tool_msg["tool_call_id"] == call["id"] and tool_msg["content"] == ends[0]["output"]
        # The second turn's prompt held the first turn and the tool result.
        assert done["usage"]["prompt_tokens"] > 0 and done["message"]["index"] == 3
        await conn.close()
    run(go())


def test_durations_are_the_tools_own(tools_daemon):
    async def go():
        conn = await Conn.open(tools_daemon.ws)
        sid = await new_session(conn, sampling={"max_tokens": 300, "temperature": 0, "seed": 1})
        await ask(conn, sid, "Nap.")
        events = await respond(conn, sid, server_tools=True, max_tool_turns=1,
                               tool_choice={"type": "function", "function": {"name": "nap"}})
        end = of(events, "tool.end")[0]
        own_ms = float(end["output"])
        # The recorded time is the tool's sleep plus starting Python and
        # reading its answer: never less, and not much more.
        assert own_ms <= end["duration_ms"] < own_ms + 1500, (own_ms, end["duration_ms"])
        await conn.close()
        return end
    end = run(go())
    st, body = tools_daemon.request("GET", "/metrics")
    assert 'mnemo_server_tool_calls_total{tool="nap",outcome="ok"} 1' in body, body
    own_ms = float(end["output"])
    assert tools_daemon.stop() == 0
    db = sqlite3.connect(tools_daemon.data_dir / "mnemo.db")
    # The store's record of the call, in its program (begun for the response).
    started, ended, status, program = db.execute(
        "SELECT started_at, ended_at, status, program_id FROM tool_calls WHERE id = ?", (end["call_id"],)).fetchone()
    assert status == "ok" and own_ms - 1 <= ended - started <= end["duration_ms"] + 2
    assert db.execute("SELECT ended_at IS NOT NULL FROM programs WHERE id = ?", (program,)).fetchone() == (1,)
    # What Continuum's TTL model learned for "nap" is that same duration, not
    # a client's report.
    state = json.loads(db.execute("SELECT json FROM policy_state WHERE name = 'ttl'").fetchone()[0])
    [learned] = state["tools"]["tools"]["nap"]
    assert own_ms / 1000 <= learned <= end["duration_ms"] / 1000 + 0.002, (learned, own_ms, end["duration_ms"])


def test_a_hanging_tool_is_cut_by_its_timeout_and_the_daemon_serves_on(tools_daemon):
    async def go():
        conn = await Conn.open(tools_daemon.ws)
        sid = await new_session(conn, sampling={"max_tokens": 300, "temperature": 0})
        await ask(conn, sid)
        t0 = time.monotonic()
        events = await respond(conn, sid, server_tools=True, max_tool_turns=1,
                               tool_choice={"type": "function", "function": {"name": "hang"}})
        end = of(events, "tool.end")[0]
        assert end["status"] == "error" and end["error"] == "timeout", end
        assert "timed out" in end["output"]
        assert 300 <= end["duration_ms"] < 5000
        assert time.monotonic() - t0 < 30
        # The model read the error as the tool's result.
        history = await conn.rpc({"type": "session.get", "session_id": sid})
        assert history["messages"][2]["role"] == "tool" and "timed out" in history["messages"][2]["content"]
        await ask(conn, sid, "again")
        again = await respond(conn, sid, tool_choice="none", server_tools=True)
        assert again[-1]["type"] == "response.done" and again[-1]["tool_turns"] == 0
        await conn.close()
    run(go())


def test_cancel_stops_a_running_tool(tools_daemon):
    async def go():
        conn = await Conn.open(tools_daemon.ws)
        sid = await new_session(conn, sampling={"max_tokens": 300, "temperature": 0})
        await ask(conn, sid)
        eid = await conn.send({"type": "response.create", "session_id": sid, "server_tools": True,
                               "tool_choice": {"type": "function", "function": {"name": "hang"}}})
        events = []
        while True:
            m = await conn.recv()
            events.append(m)
            if m["type"] == "tool.start":
                t0 = time.monotonic()
                await conn.send({"type": "response.cancel", "response_id": m["response_id"]})
            if m["type"] == "response.done":
                break
        assert events[-1]["finish_reason"] == "cancelled", events[-1]
        assert time.monotonic() - t0 < 2  # not the tool's 300 ms timeout... nor its 60 s sleep
        assert of(events, "tool.end")[0]["error"] == "cancelled"
        await conn.close()
    run(go())


def test_the_sessions_own_tools_stay_with_the_client(tools_daemon):
    async def go():
        conn = await Conn.open(tools_daemon.ws)
        sid = await new_session(conn, tools=[CALC_TOOL], sampling={"max_tokens": 300, "temperature": 0})
        await ask(conn, sid)
        events = await respond(conn, sid, server_tools=True,
                               tool_choice={"type": "function", "function": {"name": "calc"}})
        assert not of(events, "tool.start")
        done = events[-1]
        assert done["finish_reason"] == "tool_calls" and done["tool_turns"] == 0
        assert done["message"]["tool_calls"][0]["name"] == "calc"
        # Without server_tools the daemon's tools are not offered at all.
        await conn.rpc({"type": "message.append", "session_id": sid,
                        "message": {"role": "tool", "tool_call_id": done["message"]["tool_calls"][0]["id"],
                                    "content": "4"}})
        refused = await respond(conn, sid, tool_choice={"type": "function", "function": {"name": "shout"}})
        assert refused[-1]["type"] == "error" and refused[-1]["field"] == "tool_choice", refused[-1]
        await conn.close()
    run(go())


def test_tools_are_listed(tools_daemon):
    async def go():
        conn = await Conn.open(tools_daemon.ws)
        m = await conn.rpc({"type": "tools.list"})
        await conn.close()
        return m
    m = run(go())
    assert m["type"] == "tools.listed"
    assert [t["name"] for t in m["tools"]] == ["shout", "nap", "hang"]
    assert m["tools"][0]["kind"] == "command" and m["tools"][0]["provider"] == "shout"
    assert m["tools"][0]["parameters"] == SHOUT["parameters"]
    st, body = tools_daemon.request("GET", "/v1/tools")
    assert st == 200
    data = json.loads(body)["data"]
    assert [t["name"] for t in data] == ["shout", "nap", "hang"] and data[0]["type"] == "function"


def test_server_tools_without_a_tools_file_is_refused(daemon):
    async def go():
        conn = await Conn.open(daemon.ws)
        sid = await new_session(conn)
        await ask(conn, sid)
        events = await respond(conn, sid, server_tools=True)
        await conn.close()
        return events[-1]
    err = run(go())
    assert err["type"] == "error" and err["code"] == "invalid_request" and err["field"] == "server_tools", err
    st, body = daemon.request("GET", "/v1/tools")
    assert st == 200 and json.loads(body)["data"] == []


@pytest.mark.parametrize("content, needle", [
    ('{"commands": {"x": {"argv": ["true"], "timeout_ms": 5}}}', "commands.x.timeout_ms: unknown field"),
    ('{"mcpServers": {"fs": {"args": []}}}', "mcpServers.fs.command: missing"),
    ('{"commands": {"x": {"argv": ["mnemo-no-such-tool"]}}}', "mnemo-no-such-tool"),
    ('not json', "not valid JSON"),
    ('{"mcpServers": {"x": {"command": "mnemo-no-such-server"}}}', "mnemo-no-such-server"),
    ('{"plugins": {"p": {"path": "/nonexistent/libp.so"}}}', "/nonexistent/libp.so"),
])
def test_a_bad_tools_file_stops_mnemod_naming_the_field(tmp_path, model_dir, content, needle):
    path = tmp_path / "tools.json"
    path.write_text(content)
    p = subprocess.run([MNEMOD, "--port", "0", "--data-dir", str(tmp_path / "d"), "--model", str(model_dir),
                        "--tools", str(path)], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert needle in p.stderr, p.stderr
