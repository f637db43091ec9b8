"""Correlation, timeouts, stream routing and reconnection, against a scripted fake daemon
(an in-process WebSocket server on 127.0.0.1), so the edge cases are exact (no mnemod)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import websockets

from mnemo import (AsyncClient, ConnectionFailedError, MnemoTimeoutError, NotFoundError,
                   ResponseDelta, ResponseDone, UnknownEvent)

SESSION = {"id": "sess_1", "created_at": 1, "updated_at": 1, "system": "", "sampling": {},
           "tools": [], "metadata": {}, "message_count": 0}

Handler = Callable[[Any, list[dict]], Awaitable[None]]


class FakeDaemon:
    """Runs `handler(ws, received)` per connection; `received` collects that connection's events."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: list[list[dict]] = []

    async def __aenter__(self) -> FakeDaemon:
        self.server = await websockets.serve(self._serve, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/ws"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, ws: Any) -> None:
        received: list[dict] = []
        self.connections.append(received)
        try:
            await self.handler(ws, received)
        except websockets.exceptions.ConnectionClosed:
            pass


async def recv(ws: Any, received: list[dict]) -> dict:
    event = json.loads(await ws.recv())
    received.append(event)
    return event


async def test_replies_out_of_order_reach_their_callers() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        first, second = await recv(ws, received), await recv(ws, received)
        for event in (second, first):  # answer the later request first
            await ws.send(json.dumps({"type": "session.history", "event_id": event["event_id"],
                                      "session": {**SESSION, "id": event["session_id"]}, "messages": []}))
        await ws.wait_closed()

    async with FakeDaemon(handler) as fake, AsyncClient(fake.url) as client:
        a, b = await asyncio.gather(client.get_session("sess_a"), client.get_session("sess_b"))
        assert (a.session.id, b.session.id) == ("sess_a", "sess_b")
        ids = [e["event_id"] for e in fake.connections[0]]
        assert len(set(ids)) == 2 and all(ids)  # generated, distinct


async def test_request_timeout_and_the_connection_survives() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        await recv(ws, received)  # never answered
        ping = await recv(ws, received)
        await ws.send(json.dumps({"type": "pong", "event_id": ping["event_id"]}))
        await ws.wait_closed()

    async with FakeDaemon(handler) as fake, AsyncClient(fake.url, timeout=0.3) as client:
        try:
            await client.list_sessions()
            raise AssertionError("expected a timeout")
        except MnemoTimeoutError as exc:
            assert isinstance(exc, TimeoutError) and "session.list" in str(exc)
        assert await client.ping() >= 0


async def test_stream_routes_by_response_id_and_times_out_idle_streams() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        create = await recv(ws, received)
        await ws.send(json.dumps({"type": "response.created", "event_id": create["event_id"],
                                  "response_id": "resp_1", "session_id": "sess_1"}))
        await ws.send(json.dumps({"type": "response.delta", "response_id": "resp_1", "delta": "Hel"}))
        await ws.send(json.dumps({"type": "mystery.event", "x": 1}))  # unknown: to on_event
        await ws.send(json.dumps({"type": "response.delta", "response_id": "resp_other", "delta": "x"}))
        await ws.send(json.dumps({"type": "response.delta", "response_id": "resp_1", "delta": "lo"}))
        await recv(ws, received)  # the client gives up and cancels
        await ws.wait_closed()

    unsolicited: list[Any] = []
    async with FakeDaemon(handler) as fake, AsyncClient(fake.url) as client:
        client.on_event = unsolicited.append
        stream = client.stream("sess_1", timeout=0.3)
        deltas = []
        try:
            async for event in stream:
                assert isinstance(event, ResponseDelta)
                deltas.append(event.delta)
            raise AssertionError("expected a timeout")
        except MnemoTimeoutError:
            pass
        assert deltas == ["Hel", "lo"] and stream.accumulator.text == "Hello"
        assert stream.response_id == "resp_1"
        for _ in range(50):
            if len(fake.connections[0]) == 2:
                break
            await asyncio.sleep(0.01)
        assert fake.connections[0][1]["type"] == "response.cancel"
        assert fake.connections[0][1]["response_id"] == "resp_1"
        assert [type(e) for e in unsolicited] == [UnknownEvent, ResponseDelta]
        assert unsolicited[0].type == "mystery.event"


async def test_done_with_error_is_raised_with_its_code() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        create = await recv(ws, received)
        await ws.send(json.dumps({"type": "response.created", "event_id": create["event_id"],
                                  "response_id": "resp_1", "session_id": "sess_1"}))
        await ws.send(json.dumps({
            "type": "response.done", "event_id": create["event_id"], "response_id": "resp_1",
            "session_id": "sess_1", "finish_reason": "error",
            "message": {"role": "assistant", "content": "It is", "created_at": 1},
            "usage": {"prompt_tokens": 5, "cached_tokens": 0, "completion_tokens": 2},
            "error": {"code": "not_found", "message": "gone"}}))
        await ws.wait_closed()

    async with FakeDaemon(handler) as fake, AsyncClient(fake.url) as client:
        try:
            await client.respond("sess_1")
            raise AssertionError("expected an error")
        except NotFoundError as exc:
            assert exc.code == "not_found" and exc.response.text == "It is"
            assert exc.response.usage.completion_tokens == 2


async def test_drop_reconnects_and_resumes_sessions_before_the_next_call() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        while True:
            event = await recv(ws, received)
            if event["type"] == "session.create":
                await ws.send(json.dumps({"type": "session.created", "event_id": event["event_id"],
                                          "session": SESSION}))
            elif event["type"] == "session.resume":
                await ws.send(json.dumps({"type": "session.resumed", "event_id": event["event_id"],
                                          "session": SESSION}))
            elif event["type"] == "ping" and len(fake.connections) == 1:
                await ws.close()  # drop the first connection under a request
                return
            elif event["type"] == "ping":
                await ws.send(json.dumps({"type": "pong", "event_id": event["event_id"]}))

    async with FakeDaemon(handler) as fake, AsyncClient(fake.url) as client:
        await client.create_session()
        await client.ping()  # dropped, reconnected, resumed, sent again
        assert client.reconnects == 1
        assert [e["type"] for e in fake.connections[0]] == ["session.create", "ping"]
        assert [e["type"] for e in fake.connections[1]] == ["session.resume", "ping"]
        assert fake.connections[1][0]["session_id"] == "sess_1"


async def test_reads_are_retried_once_after_a_drop_and_writes_are_not() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        event = await recv(ws, received)
        if len(fake.connections) in (1, 3):
            await ws.close()  # drop the connection under the request
            return
        if event["type"] == "session.list":
            await ws.send(json.dumps({"type": "session.listed", "event_id": event["event_id"],
                                      "sessions": [SESSION], "has_more": False}))
        await ws.wait_closed()

    async with FakeDaemon(handler) as fake, AsyncClient(fake.url) as client:
        page = await client.list_sessions()
        assert [s.id for s in page.sessions] == ["sess_1"] and client.reconnects == 1
        await client.close()
    async with FakeDaemon(handler) as fake, AsyncClient(fake.url) as client:
        fake.connections.extend([[], []])  # this server's first connection counts as the third
        try:
            await client.append("sess_1", "hi")
            raise AssertionError("a write must not be sent twice")
        except ConnectionFailedError:
            pass
        assert [e["type"] for c in fake.connections for e in c] == ["message.append"]


async def test_no_reconnect_when_disabled() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        await recv(ws, received)
        await ws.close()

    async with FakeDaemon(handler) as fake, AsyncClient(fake.url, reconnect=False) as client:
        for _ in range(2):
            try:
                await client.ping()
                raise AssertionError("expected ConnectionFailedError")
            except ConnectionFailedError:
                pass
        assert len(fake.connections) == 1


async def test_refused_connection_is_a_connection_error() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        pass

    async with FakeDaemon(handler) as fake:
        url = fake.url
    try:
        await AsyncClient(url).connect()
        raise AssertionError("expected ConnectionFailedError")
    except ConnectionFailedError as exc:
        assert url in str(exc)


async def test_stream_done_event_is_last() -> None:
    async def handler(ws: Any, received: list[dict]) -> None:
        create = await recv(ws, received)
        rid = {"response_id": "resp_9"}
        await ws.send(json.dumps({"type": "response.created", "event_id": create["event_id"],
                                  "session_id": "sess_1", **rid}))
        await ws.send(json.dumps({"type": "response.tool_call", **rid,
                                  "tool_call": {"id": "call_1", "name": "f", "arguments": {"x": 1}}}))
        await ws.send(json.dumps({
            "type": "response.done", "event_id": create["event_id"], "session_id": "sess_1", **rid,
            "finish_reason": "tool_calls",
            "message": {"index": 0, "role": "assistant", "content": "", "created_at": 1,
                        "tool_calls": [{"id": "call_1", "name": "f", "arguments": {"x": 1}}]},
            "usage": {"prompt_tokens": 9, "cached_tokens": 4, "completion_tokens": 3}}))
        await ws.wait_closed()

    async with FakeDaemon(handler) as fake, AsyncClient(fake.url) as client:
        stream = await client.stream("sess_1", tool_choice="f", program_id="prog_1")
        events = [e async for e in stream]
        assert isinstance(events[-1], ResponseDone) and len(events) == 2
        response = await stream.final()
        assert response.finish_reason == "tool_calls" and response.tool_calls[0].arguments == {"x": 1}
        assert response.usage.cached_tokens == 4
        sent = fake.connections[0][0]
        assert sent["tool_choice"] == {"type": "function", "function": {"name": "f"}}
        assert sent["program_id"] == "prog_1"
