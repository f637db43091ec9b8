"""Server-side tools: a daemon started with `--tools FILE` holding one command tool (`shout`)
runs the model's calls of it within the response (tool.start / tool.end), stores the
results and goes on generating; the session's own tools still stop the response."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import Daemon
from mnemo import (AsyncClient, Client, InvalidFieldError, InvalidRequestError, ResponseDone,
                   ResponseToolCall, ServerEvent, ServerTool, ToolEnd, ToolRegistry, ToolsListed,
                   ToolStart, parse_event)

SHOUT = {
    "argv": ["/usr/bin/python3", "-c",
             "import sys, json; a = json.load(sys.stdin); print(a['text'].upper())"],
    "description": "Upper-cases text",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}
SAMPLING = {"max_tokens": 128, "temperature": 0}


def shouted(text: str) -> str:
    """What `shout` answers for `text` (print's newline included)."""
    return text.upper() + "\n"


@pytest.fixture(scope="module")
def tools_daemon(mnemod_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    data_dir = tmp_path_factory.mktemp("mnemod-tools")
    tools_file = data_dir / "tools.json"
    tools_file.write_text(json.dumps({"commands": {"shout": SHOUT}}))
    d = Daemon(mnemod_binary, data_dir, ["--tools", str(tools_file)])
    d.start()
    yield d
    d.stop()


def lookup_tools() -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool
    def lookup(key: str) -> str:
        """Looks a key up."""
        return f"value of {key}"

    return tools


async def test_list_tools_reports_the_command(tools_daemon: Daemon) -> None:
    async with AsyncClient(tools_daemon.url) as client:
        tools = await client.list_tools()
    assert [(t.name, t.kind, t.description) for t in tools] == [("shout", "command", "Upper-cases text")]
    assert tools[0].parameters == SHOUT["parameters"]
    assert tools[0].provider
    with Client(tools_daemon.url) as sync_client:
        assert sync_client.list_tools() == tools


async def test_the_daemon_runs_the_tool_and_continues(tools_daemon: Daemon) -> None:
    async with AsyncClient(tools_daemon.url) as client:
        session = await client.create_session(sampling=SAMPLING)
        await client.append(session.id, "Shout 'hello'.")
        events: list[ServerEvent] = []
        stream = client.stream(session.id, tool_choice="required", server_tools=True, max_tool_turns=1)
        async for event in stream:
            events.append(event)
        response = await stream.final()

        starts = [e for e in events if isinstance(e, ToolStart)]
        ends = [e for e in events if isinstance(e, ToolEnd)]
        assert len(starts) == len(ends) >= 1
        assert response.tool_turns == 1
        calls = {e.tool_call.id: e.tool_call for e in events if isinstance(e, ResponseToolCall)}
        for start, end in zip(starts, ends):
            assert (start.name, end.name, start.call_id, end.call_id) == ("shout", "shout", end.call_id, start.call_id)
            assert start.response_id == end.response_id == response.response_id
            assert start.session_id == end.session_id == session.id
            assert calls[start.call_id].arguments == start.arguments  # the call was streamed before it ran
            assert events.index(start) < events.index(end)
            assert end.status == "ok" and end.error is None, end
            assert end.output == shouted(start.arguments["text"])
            assert end.output_bytes == len(end.output.encode()) and end.duration_ms >= 0
        assert isinstance(events[-1], ResponseDone) and events[-1].tool_turns == 1
        assert [(r.call_id, r.name, r.status, r.output) for r in response.server_tool_runs] == \
            [(e.call_id, e.name, e.status, e.output) for e in ends]
        assert response.server_tool_runs[0].arguments == starts[0].arguments

        # Stored: the call, the daemon's tool message, then whatever the model said next.
        history = (await client.get_session(session.id)).messages
        assert [m.role for m in history[:3]] == ["user", "assistant", "tool"]
        assert [c.id for c in history[1].tool_calls] == [s.call_id for s in starts[:len(history[1].tool_calls)]]
        stored = {m.tool_call_id: m for m in history if m.role == "tool"}
        for end in ends:
            assert stored[end.call_id].content == end.output
        assert history[-1].role == "assistant"
        assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


async def test_max_tool_turns_bounds_the_rounds(tools_daemon: Daemon) -> None:
    async with AsyncClient(tools_daemon.url) as client:
        session = await client.create_session(sampling=SAMPLING)
        await client.append(session.id, "Shout everything.")
        response = await client.respond(session.id, tool_choice="required", server_tools=True, max_tool_turns=2)
        assert response.tool_turns == 2
        assert response.finish_reason == "tool_calls"
        assert len(response.server_tool_runs) >= 2
        assert all(r.status == "ok" for r in response.server_tool_runs)
        history = (await client.get_session(session.id)).messages
        assert sum(m.role == "tool" for m in history) == len(response.server_tool_runs)


async def test_server_tools_can_name_the_tools_offered(tools_daemon: Daemon) -> None:
    async with AsyncClient(tools_daemon.url) as client:
        session = await client.create_session(sampling=SAMPLING)
        await client.append(session.id, "Shout 'hi'.")
        response = await client.respond(session.id, tool_choice="required", server_tools=["shout"], max_tool_turns=1)
        assert response.tool_turns == 1
        assert response.server_tool_runs and all(r.name == "shout" and r.status == "ok" for r in response.server_tool_runs)
        with pytest.raises(InvalidRequestError) as refused:
            await client.respond(session.id, server_tools=["nope"])
        assert refused.value.field == "server_tools"
        with pytest.raises(TypeError):
            client.stream(session.id, server_tools="shout")


async def test_a_session_tool_still_stops_the_response(tools_daemon: Daemon) -> None:
    tools = lookup_tools()
    async with AsyncClient(tools_daemon.url) as client:
        session = await client.create_session(tools=tools, sampling=SAMPLING)
        await client.append(session.id, "Look up 'a'.")
        response = await client.respond(session.id, tool_choice="lookup", server_tools=True)
        assert response.finish_reason == "tool_calls"
        assert [c.name for c in response.tool_calls] == ["lookup"]
        assert response.client_tool_calls == response.tool_calls
        assert response.tool_turns == 0 and response.server_tool_runs == []
        history = (await client.get_session(session.id)).messages
        assert [m.role for m in history] == ["user", "assistant"]  # the client answers the call


async def test_cancel_stops_a_running_tool(start_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    nap = {"argv": ["/usr/bin/python3", "-c", "import time; time.sleep(30)"], "description": "Sleeps."}
    tools_file = tmp_path / "nap.json"
    tools_file.write_text(json.dumps({"commands": {"nap": nap}}))
    d = start_daemon("--tools", str(tools_file))
    async with AsyncClient(d.url) as client:
        session = await client.create_session(sampling=SAMPLING)
        await client.append(session.id, "Sleep.")
        stream = client.stream(session.id, tool_choice="nap", server_tools=True)
        started = time.monotonic()
        events: list[ServerEvent] = []
        async for event in stream:
            events.append(event)
            if isinstance(event, ToolStart):
                await stream.cancel()
        response = await stream.final()
        assert time.monotonic() - started < 10  # not the tool's 30 s
        assert response.finish_reason == "cancelled"
        end = next(e for e in events if isinstance(e, ToolEnd))
        assert (end.name, end.status, end.error) == ("nap", "error", "cancelled")
        assert [(r.name, r.status, r.error) for r in response.server_tool_runs] == [("nap", "error", "cancelled")]
        await client.append(session.id, "again")  # the session is free


async def test_without_a_tools_file_server_tools_is_refused(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        assert await client.list_tools() == []
        session = await client.create_session(sampling=SAMPLING)
        await client.append(session.id, "hi")
        with pytest.raises(InvalidRequestError) as refused:
            await client.respond(session.id, server_tools=True)
        assert refused.value.field == "server_tools"
        with pytest.raises(InvalidFieldError) as out_of_range:
            await client.respond(session.id, max_tool_turns=0)
        assert out_of_range.value.field == "max_tool_turns"


async def test_run_leaves_the_daemons_calls_to_the_daemon(tools_daemon: Daemon) -> None:
    # Response 1 is forced to call shout every turn: the daemon runs round 1, and the call of
    # the turn after it (past max_tool_turns) is left to the client, which has no shout. Response
    # 2 is forced to call the session's lookup, which the client runs.
    tools = lookup_tools()
    async with AsyncClient(tools_daemon.url) as client:
        session = await client.create_session(tools=tools, sampling=SAMPLING)
        result = await client.run(session.id, "Shout 'hi', then look it up.", tools, first_tool_choice="shout",
                                  tool_choice="lookup", max_turns=2, server_tools=True, max_tool_turns=1)
        first, second = result.turns
        assert (first.response.tool_turns, second.response.tool_turns, result.tool_turns) == (1, 0, 1)
        server_ids = {r.call_id for r in result.server_tool_runs}
        assert server_ids and all(r.name == "shout" and r.status == "ok" for r in result.server_tool_runs)
        assert {(t.call.name, t.status) for t in first.tools} == {("shout", "error")}
        assert {(t.call.name, t.status) for t in second.tools} == {("lookup", "ok")}
        client_ids = {t.call.id for turn in result.turns for t in turn.tools}
        assert not client_ids & server_ids
        history = (await client.get_session(session.id)).messages
        answered = [m.tool_call_id for m in history if m.role == "tool"]
        assert sorted(answered) == sorted(server_ids | client_ids)  # each call answered once


async def test_run_answers_only_the_calls_the_daemon_left_scripted() -> None:
    """Against a scripted daemon, so the mix is exact: one turn calls a server tool (run by the
    daemon) and a session tool (left to the client)."""
    from test_connection import FakeDaemon, recv

    shout_call = {"id": "call_s", "name": "shout", "arguments": {"text": "hi"}}
    lookup_call = {"id": "call_l", "name": "lookup", "arguments": {"key": "hi"}}

    async def handler(ws: Any, received: list[dict]) -> None:
        async def reply(event: dict, **fields: Any) -> None:
            await ws.send(json.dumps({"event_id": event["event_id"], **fields}))

        async def respond(create: dict, done: dict, *events: dict) -> None:
            base = {"response_id": f"resp_{len(received)}", "session_id": "sess_1"}
            await reply(create, type="response.created", **base)
            for e in events:
                await ws.send(json.dumps({**e, **base}))
            await reply(create, type="response.done", **base, usage={"prompt_tokens": 5}, **done)

        begin = await recv(ws, received)
        await reply(begin, type="program.begun", program_id="prog_1", session_id="sess_1", started_at=1)
        await reply(await recv(ws, received), type="message.appended", session_id="sess_1", indices=[0], message_count=1)
        await respond(await recv(ws, received),
                      {"finish_reason": "tool_calls", "tool_turns": 1,
                       "message": {"role": "assistant", "content": "", "tool_calls": [shout_call, lookup_call]}},
                      {"type": "response.tool_call", "tool_call": shout_call},
                      {"type": "response.tool_call", "tool_call": lookup_call},
                      {"type": "tool.start", "call_id": "call_s", "name": "shout", "arguments": {"text": "hi"},
                       "program_id": "prog_1"},
                      {"type": "tool.end", "call_id": "call_s", "name": "shout", "status": "ok", "duration_ms": 2.5,
                       "output_bytes": 3, "output": "HI\n"})
        start = await recv(ws, received)
        await reply(start, type="tool.started", call_id=start["call_id"], started_at=2)
        end = await recv(ws, received)
        await reply(end, type="tool.ended", call_id=end["call_id"], status="ok", duration_ms=1.0)
        await reply(await recv(ws, received), type="message.appended", session_id="sess_1", indices=[3], message_count=4)
        await respond(await recv(ws, received),
                      {"finish_reason": "stop", "tool_turns": 0, "message": {"role": "assistant", "content": "done"}})
        end_program = await recv(ws, received)
        await reply(end_program, type="program.ended", program_id="prog_1", duration_ms=9.0)
        await ws.wait_closed()

    async with FakeDaemon(handler) as fake, AsyncClient(fake.url) as client:
        result = await client.run("sess_1", "go", lookup_tools(), server_tools=True, max_tool_turns=3)
    sent = fake.connections[0]
    creates = [e for e in sent if e["type"] == "response.create"]
    assert [(e["server_tools"], e["max_tool_turns"], e["program_id"]) for e in creates] == [(True, 3, "prog_1")] * 2
    assert [e["call_id"] for e in sent if e["type"] == "tool.start"] == ["call_l"]  # only the client's call
    appended = [e for e in sent if e["type"] == "message.append"][1]
    assert appended["message"] == {"role": "tool", "content": "value of hi", "tool_call_id": "call_l", "name": "lookup"}
    assert [t.call.name for t in result.turns[0].tools] == ["lookup"]
    runs = result.server_tool_runs
    assert [(r.call_id, r.name, r.arguments, r.status, r.duration_ms, r.output, r.output_bytes) for r in runs] == \
        [("call_s", "shout", {"text": "hi"}, "ok", 2.5, "HI\n", 3)]
    assert result.tool_turns == 1 and result.text == "done" and result.finish_reason == "stop"


def test_server_tool_events_parse() -> None:
    start = parse_event({"type": "tool.start", "response_id": "r", "session_id": "s", "call_id": "c",
                         "name": "shout", "arguments": {"text": "a"}, "program_id": "p"})
    assert isinstance(start, ToolStart) and (start.arguments, start.program_id) == ({"text": "a"}, "p")
    end = parse_event({"type": "tool.end", "response_id": "r", "session_id": "s", "call_id": "c", "name": "shout",
                       "status": "error", "duration_ms": 30000, "output_bytes": 0, "output": "timed out",
                       "error": "timeout"})
    assert isinstance(end, ToolEnd) and (end.status, end.error, end.output) == ("error", "timeout", "timed out")
    listed = parse_event({"type": "tools.listed", "event_id": "e", "tools": [
        {"name": "shout", "description": "d", "parameters": {"type": "object"}, "provider": "shout", "kind": "command"}]})
    assert isinstance(listed, ToolsListed)
    assert listed.tools == [ServerTool("shout", "d", {"type": "object"}, "shout", "command")]
    done = parse_event({"type": "response.done", "response_id": "r", "session_id": "s", "finish_reason": "stop",
                        "message": {"role": "assistant", "content": ""}, "usage": {}})
    assert isinstance(done, ResponseDone) and done.tool_turns == 0  # an older daemon's done
