"""The WebSocket session protocol end to end: sessions, messages, streamed
responses, tool calls, programs and tools, cancellation."""
import asyncio
import json

from wsclient import CALC_TOOL, Conn, new_session, start_endless_response


def run(coro):
    return asyncio.run(coro)


def test_session_lifecycle_and_streamed_response(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        sid = await new_session(c, system="be brief", sampling={"max_tokens": 6, "temperature": 0},
                                metadata={"user": "ada"})
        a = await c.rpc({"type": "message.append", "session_id": sid,
                         "message": {"role": "user", "content": "hello"}})
        assert a["type"] == "message.appended" and a["indices"] == [0] and a["message_count"] == 1
        events = await c.respond(sid)
        types = [e["type"] for e in events]
        assert types[0] == "response.created" and types[-1] == "response.done"
        done = events[-1]
        assert done["finish_reason"] in ("stop", "length")
        deltas = "".join(e["delta"] for e in events if e["type"] == "response.delta")
        assert done["message"]["content"] == deltas
        assert done["message"]["index"] == 1
        assert done["usage"]["completion_tokens"] <= 6 and done["usage"]["prompt_tokens"] > 0
        # A second turn reuses the first one's KV through the prefix cache.
        await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": "more"}})
        done2 = (await c.respond(sid))[-1]
        assert done2["usage"]["cached_tokens"] >= 16, done2["usage"]
        h = await c.rpc({"type": "session.get", "session_id": sid})
        assert [m["role"] for m in h["messages"]] == ["user", "assistant", "user", "assistant"]
        assert h["session"]["metadata"] == {"user": "ada"} and h["session"]["message_count"] == 4
        listed = await c.rpc({"type": "session.list", "limit": 10})
        assert sid in [s["id"] for s in listed["sessions"]]
        st, metrics = daemon.request("GET", "/metrics")
        assert "mnemo_sessions 1" in metrics and "mnemo_sessions_responding 0" in metrics
        d = await c.rpc({"type": "session.delete", "session_id": sid})
        assert d["type"] == "session.deleted"
        gone = await c.rpc({"type": "session.get", "session_id": sid})
        assert gone["type"] == "error" and gone["code"] == "not_found"
        await c.close()
    run(go())


def test_required_tool_call_is_valid_and_stored(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        sid = await new_session(c, tools=[CALC_TOOL], sampling={"max_tokens": 600})
        await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": "2+2"}})
        events = await c.respond(sid, tool_choice="required")
        calls = [e["tool_call"] for e in events if e["type"] == "response.tool_call"]
        done = events[-1]
        assert done["finish_reason"] == "tool_calls", done
        assert len(calls) == 1 and calls[0]["name"] == "calc"
        assert isinstance(calls[0]["arguments"]["expr"], str)
        assert set(calls[0]["arguments"]) <= {"expr", "digits"}
        assert done["message"]["tool_calls"] == calls
        # The tool result goes back as a tool message; the next turn runs on it.
        call = calls[0]
        p = await c.rpc({"type": "program.begin", "session_id": sid})
        t = await c.rpc({"type": "tool.start", "call_id": call["id"], "name": "calc", "program_id": p["program_id"],
                         "arguments": call["arguments"]})
        assert t["type"] == "tool.started"
        e = await c.rpc({"type": "tool.end", "call_id": call["id"], "result": "4"})
        assert e["type"] == "tool.ended" and e["duration_ms"] >= 0
        await c.rpc({"type": "message.append", "session_id": sid,
                     "message": {"role": "tool", "tool_call_id": call["id"], "name": "calc", "content": "4"}})
        events = await c.respond(sid, tool_choice="none", sampling={"max_tokens": 4}, program_id=p["program_id"])
        assert events[-1]["type"] == "response.done" and events[-1]["finish_reason"] in ("stop", "length")
        end = await c.rpc({"type": "program.end", "program_id": p["program_id"]})
        assert end["type"] == "program.ended"
        again = await c.rpc({"type": "program.end", "program_id": p["program_id"]})
        assert again["code"] == "not_found"
        await c.close()
    run(go())


def test_cancel_and_busy(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        sid, created = await start_endless_response(c)
        busy = await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": "x"}})
        assert busy["type"] == "error" and busy["code"] == "busy"
        await c.send({"type": "response.cancel", "response_id": created["response_id"]})
        while True:
            m = await c.recv()
            if m["type"] == "response.done":
                break
        assert m["finish_reason"] == "cancelled" and "index" not in m["message"]
        # The session is free again.
        ok = await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": "y"}})
        assert ok["type"] == "message.appended"
        # Deleting a session with a running response ends the response first.
        created = await c.rpc({"type": "response.create", "session_id": sid})
        eid = await c.send({"type": "session.delete", "session_id": sid})
        order = []
        while not order or order[-1] != "session.deleted":
            m = await c.recv()
            if m["type"] in ("response.done", "session.deleted"):
                order.append(m["type"])
                if m["type"] == "response.done":
                    assert m["finish_reason"] == "cancelled" and "index" not in m["message"]
        assert order == ["response.done", "session.deleted"]
        await c.close()
    run(go())


def test_concurrent_sessions_on_many_connections(daemon):
    async def one(i):
        c = await Conn.open(daemon.ws)
        sid = await new_session(c, sampling={"max_tokens": 5, "seed": i})
        await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": f"n{i}"}})
        done = (await c.respond(sid))[-1]
        await c.close()
        return done

    async def go():
        return await asyncio.gather(*(one(i) for i in range(8)))
    for done in run(go()):
        assert done["type"] == "response.done" and done["finish_reason"] in ("stop", "length")
