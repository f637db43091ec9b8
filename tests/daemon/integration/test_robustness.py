"""Bad input gets a clear error and the daemon keeps serving everyone."""
import asyncio
import json
import socket

import websockets

from wsclient import Conn, new_session, start_endless_response


def run(coro):
    return asyncio.run(coro)


def test_bad_events_get_errors_and_the_socket_stays_open(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        await c.ws.send("{not json")
        assert (await c.recv())["code"] == "invalid_json"
        await c.ws.send(json.dumps({"type": "no.such", "event_id": "x1"}))
        m = await c.recv()
        assert m["code"] == "unknown_type" and m["event_id"] == "x1"
        await c.ws.send(json.dumps({"type": "session.get", "event_id": "x2", "session_id": 7}))
        m = await c.recv()
        assert m["code"] == "invalid_field" and m["event_id"] == "x2"
        await c.ws.send(json.dumps({"type": "session.get", "event_id": "x3"}))
        assert (await c.recv())["code"] == "missing_field"
        m = await c.rpc({"type": "message.append", "session_id": "sess_nope", "message": {"role": "user", "content": "x"}})
        assert m["code"] == "not_found"
        m = await c.rpc({"type": "response.create", "session_id": "sess_nope"})
        assert m["code"] == "not_found"
        sid = await new_session(c)
        m = await c.rpc({"type": "response.create", "session_id": sid, "tool_choice": "required"})
        assert m["code"] == "invalid_request"
        assert (await c.rpc({"type": "ping"}))["type"] == "pong"
        await c.close()
    run(go())


def test_oversized_frame_closes_only_that_connection(daemon_factory):
    d = daemon_factory("--max-frame-bytes", "4096")

    async def go():
        big = await Conn.open(d.ws)
        await big.ws.send(json.dumps({"type": "ping", "pad": "x" * 10000}))
        try:
            await big.recv()
            assert False, "the oversized frame was accepted"
        except websockets.ConnectionClosed as e:
            assert e.code == 1009
        c = await Conn.open(d.ws)
        assert (await c.rpc({"type": "ping"}))["type"] == "pong"
        await c.close()
    run(go())


def test_binary_message_closes_with_1003(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        await c.ws.send(b"\x00\x01")
        try:
            await c.recv()
            assert False, "a binary message was accepted"
        except websockets.ConnectionClosed as e:
            assert e.code == 1003
        c2 = await Conn.open(daemon.ws)
        assert (await c2.rpc({"type": "ping"}))["type"] == "pong"
        await c2.close()
    run(go())


def test_bad_http_requests(daemon):
    st, body = daemon.request("POST", "/v1/chat/completions", raw=b"{nope")
    assert st == 400 and json.loads(body)["error"]["code"] == "invalid_json"
    st, body = daemon.request("POST", "/v1/chat/completions", {"messages": "hi"})
    assert st == 400 and json.loads(body)["error"]["param"] == "messages"
    st, body = daemon.request("POST", "/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]})
    assert st == 400 and "role" in json.loads(body)["error"]["message"]
    st, body = daemon.request("POST", "/v1/chat/completions",
                              {"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})
    assert st == 400
    st, _ = daemon.request("GET", "/nowhere")
    assert st == 404
    # A body over --max-body-bytes is refused from its Content-Length.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 41943040\r\n\r\n" + b"x" * 1000)
        assert s.recv(64).startswith(b"HTTP/1.1 413")
    st, body = daemon.request("GET", "/healthz")
    assert st == 200 and json.loads(body)["status"] == "ok"


def test_client_vanishing_mid_response_is_cancelled(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        sid, _ = await start_endless_response(c)
        await c.recv()  # it is streaming
        c.ws.transport.abort()  # gone without a close handshake
        # The daemon notices, cancels, and the session is usable again.
        c2 = await Conn.open(daemon.ws)
        for _ in range(100):
            m = await c2.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": "x"}})
            if m["type"] == "message.appended":
                break
            assert m["code"] == "busy"
            await asyncio.sleep(0.1)
        assert m["type"] == "message.appended"
        await c2.close()
    run(go())
    st, metrics = daemon.request("GET", "/metrics")
    assert st == 200 and "mnemo_kv_blocks_used" in metrics
