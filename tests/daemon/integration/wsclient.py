"""A minimal asyncio client of docs/protocol.md for the integration tests."""
import asyncio
import itertools
import json

import websockets

TIMEOUT = 60


class Conn:
    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    @classmethod
    async def open(cls, url, headers=None, **kw):
        ws = await websockets.connect(url, extra_headers=headers or {}, max_size=None, **kw)
        return cls(ws)

    async def close(self):
        await self.ws.close()

    async def send(self, event):
        if "event_id" not in event:
            event = {**event, "event_id": f"e{next(self.ids)}"}
        await self.ws.send(json.dumps(event))
        return event["event_id"]

    async def recv(self):
        return json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))

    async def rpc(self, event):
        """Sends one event and returns the first reply carrying its event_id."""
        eid = await self.send(event)
        while True:
            m = await self.recv()
            if m.get("event_id") == eid:
                return m

    async def respond(self, session_id, **fields):
        """response.create, then every event up to response.done (or an error)."""
        eid = await self.send({"type": "response.create", "session_id": session_id, **fields})
        events = []
        while True:
            m = await self.recv()
            if m.get("event_id") not in (None, eid):
                continue
            events.append(m)
            if m["type"] in ("response.done", "error"):
                return events


async def new_session(conn, **fields):
    m = await conn.rpc({"type": "session.create", **fields})
    assert m["type"] == "session.created", m
    return m["session"]["id"]


async def start_endless_response(conn):
    """A session with a user message and a response that runs until stopped;
    returns the session id and the response.created event."""
    sid = await new_session(conn, sampling={"max_tokens": 100000})
    await conn.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": "go on"}})
    created = await conn.rpc({"type": "response.create", "session_id": sid})
    assert created["type"] == "response.created", created
    return sid, created


CALC_TOOL = {"type": "function",
             "function": {"name": "calc", "description": "Evaluates arithmetic.",
                          "parameters": {"type": "object", "properties": {"expr": {"type": "string"},
                                                                          "digits": {"type": "integer"}},
                                         "required": ["expr"]}}}
