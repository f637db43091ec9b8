"""The blocking client has the async client's surface: sessions, streams with plain `for`,
cancel on break, typed errors, and the agent loop."""

from __future__ import annotations

import pytest

from conftest import LONG, Daemon
from mnemo import BusyError, Client, NotFoundError, ResponseDelta, ResponseDone, ToolRegistry


def test_sync_sessions_and_streaming(daemon: Daemon) -> None:
    with Client(daemon.url) as client:
        session = client.create_session(sampling={"max_tokens": 8, "temperature": 0})
        assert client.append(session.id, "Hi").message_count == 1
        stream = client.stream(session.id)
        events = list(stream)
        assert isinstance(events[-1], ResponseDone)
        assert stream.accumulator.text == "".join(e.delta for e in events if isinstance(e, ResponseDelta))
        assert stream.final().usage.completion_tokens > 0
        assert client.respond(session.id).finish_reason in ("stop", "length")
        assert client.get_session(session.id).session.message_count == 3
        assert session.id in [s.id for s in client.list_sessions(limit=1000).sessions]
        assert client.resume_session(session.id).id == session.id
        client.delete_session(session.id)
        with pytest.raises(NotFoundError):
            client.get_session(session.id)


def test_sync_break_cancels(daemon: Daemon) -> None:
    with Client(daemon.url) as client:
        session = client.create_session(sampling=LONG)
        client.append(session.id, "Go on and on.")
        stream = client.stream(session.id, tool_choice="none")
        for event in stream:
            assert isinstance(event, ResponseDelta)
            with pytest.raises(BusyError):
                client.append(session.id, "too early")
            break
        # The loop's generator was closed on break: the response is cancelled and over.
        assert stream.accumulator.response.finish_reason == "cancelled"
        assert client.append(session.id, "now").message_count == 2


def test_sync_run(daemon: Daemon) -> None:
    tools = ToolRegistry()

    @tools.tool
    def double(n: int) -> int:
        """Doubles a number."""
        return 2 * n

    with Client(daemon.url) as client:
        session = client.create_session(tools=tools)
        result = client.run(session.id, "Double 21.", tools, first_tool_choice="required", max_turns=1,
                            sampling={"max_tokens": 128, "temperature": 0})
        run = result.turns[0].tools[0]
        assert run.status == "ok" and run.result == str(2 * run.call.arguments["n"])
