"""The asyncio client: sessions, messages, streamed responses, programs and tools.

    async with AsyncClient() as client:  # MNEMO_URL, MNEMO_API_KEY
        session = await client.create_session(system="Be brief.")
        await client.append(session.id, "Hello")
        response = await client.respond(session.id)

The connection opens on first use. When it drops, the next call reconnects
(with backoff) and sends session.resume for every session this client has
used, so their KV caches are rebuilt before the next response. A call in
flight when it dropped raises ConnectionFailedError, except reads (ping,
session.get, session.list, session.resume), which are sent again once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Optional, Sequence, Union

from .agent import RunResult, run
from .config import resolve_api_key, resolve_url
from .connection import Connection, EventIds
from .errors import APIError, ConnectionFailedError, NotFoundError
from .events import (MessageAppended, ProgramBegun, ProgramEnded, ServerEvent,
                     SessionCreated, SessionHistory, SessionListed, SessionResumed,
                     ToolEnded, ToolsListed, ToolStarted)
from .objects import (JSON, Message, MessageLike, Sampling, ServerTool, Session, message_json,
                      sampling_json)
from .stream import Response, ResponseStream
from .tools import ToolsLike, tool_definitions

log = logging.getLogger("mnemo")

MAX_HISTORY_PAGE = 1000  # session.get's largest `limit`

SamplingLike = Union[Sampling, JSON, None]
ToolChoice = Union[str, JSON, None]  # "none", "auto", "required", or a tool's name, or the protocol's object
ServerToolsOption = Union[bool, Sequence[str]]  # all the daemon's tools, none, or only those named


@dataclass
class SessionPage:
    sessions: list[Session]
    has_more: bool


@dataclass
class History:
    session: Session
    messages: list[Message]


@dataclass
class HistoryPage:
    """Messages in index order; `has_more`: older ones exist (pass `before=messages[0].index`)."""

    session: Session  # message_count is the whole history's
    messages: list[Message]
    has_more: bool


def server_tools_json(server_tools: ServerToolsOption) -> Union[bool, list[str]]:
    if isinstance(server_tools, bool):
        return server_tools
    if isinstance(server_tools, str):
        raise TypeError("server_tools: expected True, False or a list of tool names, not a string")
    return list(server_tools)


def tool_choice_json(choice: ToolChoice) -> Union[str, JSON, None]:
    """"auto", "none" and "required" as they are; any other string names a function."""
    if choice is None or isinstance(choice, dict) or choice in ("none", "auto", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


class AsyncClient:
    """Mnemo's session protocol over one WebSocket.

    url, api_key: default to MNEMO_URL (else ws://127.0.0.1:8420/v1/ws) and MNEMO_API_KEY.
    timeout: seconds to wait for a reply (and for the connection to open).
    stream_timeout: seconds a stream may wait for its next event (None: no limit).
    reconnect: reconnect on the next call after the connection drops;
    reconnect_attempts: tries before giving up, with backoff from 0.1 s to 2 s.
    """

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, *,
                 timeout: float = 30.0, stream_timeout: Optional[float] = 120.0,
                 reconnect: bool = True, reconnect_attempts: int = 8) -> None:
        self.url = resolve_url(url)
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.reconnect = reconnect
        self.reconnect_attempts = reconnect_attempts
        self.reconnects = 0  # how many times the connection was reopened
        self.on_event: Optional[Callable[[ServerEvent], None]] = None  # events no call waits for
        self._api_key = resolve_api_key(api_key)
        self._conn: Optional[Connection] = None
        self._connect_lock: Optional[asyncio.Lock] = None
        self._closed = False
        self._ids = EventIds()
        self._sessions: dict[str, None] = {}  # sessions used, in order, resumed after a reconnect
        self._abandoned: dict[str, ResponseStream] = {}  # by session: responses being cancelled
        self._background: set[asyncio.Task[Any]] = set()

    # Connection.

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Opens the connection now (otherwise the first call does); raises AuthenticationError or
        ConnectionFailedError."""
        await self._connection()

    async def close(self) -> None:
        self._closed = True
        for task in list(self._background):
            await asyncio.gather(task, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def _connection(self) -> Connection:
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._conn is not None and not self._conn.closed:
                return self._conn
            if self._closed:
                raise ConnectionFailedError("the client is closed")
            if self._conn is None:
                self._conn = await self._open()
                return self._conn
            if not self.reconnect:
                raise ConnectionFailedError(f"{self.url}: the connection was lost")
            self._conn = await self._reopen()
            return self._conn

    async def _open(self) -> Connection:
        conn = await Connection.open(self.url, self._api_key, self.timeout, self._ids)
        conn.on_event = self._on_unsolicited
        return conn

    async def _reopen(self) -> Connection:
        delay = 0.1
        for attempt in range(1, self.reconnect_attempts + 1):
            try:
                conn = await self._open()
                break
            except ConnectionFailedError as exc:
                if attempt == self.reconnect_attempts or type(exc) is not ConnectionFailedError:
                    raise  # out of tries, or refused for good (authentication)
                log.info("mnemo: reconnect attempt %d failed (%s); retrying in %.1f s", attempt, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.reconnects += 1
        for session_id in list(self._sessions):
            try:
                await conn.request({"type": "session.resume", "session_id": session_id}, self.timeout)
            except NotFoundError:
                self._sessions.pop(session_id, None)  # deleted meanwhile
            except APIError as exc:  # the session still works, only with a cold KV cache
                log.warning("mnemo: resuming %s after reconnecting failed: %s", session_id, exc)
        return conn

    def _on_unsolicited(self, event: ServerEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _use(self, session_id: str) -> None:
        self._sessions[session_id] = None

    async def _settle(self, session_id: str) -> None:
        """Waits until a response abandoned on this session has ended, so the next request is not `busy`."""
        stream = self._abandoned.pop(session_id, None)
        if stream is not None and not stream.finished:
            await stream.cancel_and_wait()

    def _abandon(self, stream: ResponseStream) -> None:
        self._abandoned[stream.session_id] = stream
        task = asyncio.get_running_loop().create_task(stream.cancel())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _request(self, event: JSON, session_id: Optional[str] = None,
                       timeout: Optional[float] = None, idempotent: bool = False) -> ServerEvent:
        """Sends `event` and returns its reply. An idempotent request (a read) that meets a dropped
        connection is sent once more after reconnecting; others raise, since they may have been done."""
        if session_id is not None:
            await self._settle(session_id)
        conn = await self._connection()
        try:
            reply = await conn.request(dict(event), timeout or self.timeout)
        except ConnectionFailedError:
            if not (idempotent and self.reconnect and conn.closed and not self._closed):
                raise
            conn = await self._connection()
            reply = await conn.request(dict(event), timeout or self.timeout)
        if session_id is not None:
            self._use(session_id)
        return reply

    # Sessions.

    async def create_session(self, *, system: Optional[str] = None, sampling: SamplingLike = None,
                             tools: Optional[ToolsLike] = None,
                             metadata: Optional[JSON] = None) -> Session:
        """A new session. `tools`: a ToolRegistry, Tools, plain functions, or protocol Tool dicts."""
        event: JSON = {"type": "session.create"}
        if system is not None:
            event["system"] = system
        if sampling is not None:
            event["sampling"] = sampling_json(sampling)
        definitions = tool_definitions(tools)
        if definitions:
            event["tools"] = definitions
        if metadata is not None:
            event["metadata"] = metadata
        reply = await self._request(event)
        assert isinstance(reply, SessionCreated)
        self._use(reply.session.id)
        return reply.session

    async def resume_session(self, session_id: str) -> Session:
        """Loads a stored session and starts rebuilding its KV cache; NotFoundError if unknown."""
        reply = await self._request({"type": "session.resume", "session_id": session_id}, session_id,
                                    idempotent=True)
        assert isinstance(reply, SessionResumed)
        return reply.session

    async def list_sessions(self, *, limit: Optional[int] = None, after: Optional[str] = None) -> SessionPage:
        """One page of stored sessions, oldest first; pass the last id as `after` for the next page."""
        event: JSON = {"type": "session.list"}
        if limit is not None:
            event["limit"] = limit
        if after is not None:
            event["after"] = after
        reply = await self._request(event, idempotent=True)
        assert isinstance(reply, SessionListed)
        return SessionPage(reply.sessions, reply.has_more)

    async def get_session(self, session_id: str) -> History:
        """The session and its whole history, read page by page (a long history does not fit one
        message). `session` is as of the first page read, the newest."""
        pages = [page async for page in self.history_pages(session_id, limit=MAX_HISTORY_PAGE)]
        return History(pages[0].session, [m for page in reversed(pages) for m in page.messages])

    async def get_history(self, session_id: str, *, limit: Optional[int] = None,
                          before: Optional[int] = None) -> HistoryPage:
        """One page: the newest `limit` messages (daemon default 100, at most 1000) with an index
        below `before` (default: all), in index order. The daemon may return fewer when they are
        large; `has_more` says whether older ones exist."""
        event: JSON = {"type": "session.get", "session_id": session_id}
        if limit is not None:
            event["limit"] = limit
        if before is not None:
            event["before"] = before
        reply = await self._request(event, session_id, idempotent=True)
        assert isinstance(reply, SessionHistory)
        return HistoryPage(reply.session, reply.messages, reply.has_more)

    async def history_pages(self, session_id: str, *, limit: Optional[int] = None,
                            before: Optional[int] = None) -> AsyncIterator[HistoryPage]:
        """Pages from the newest back to the first message (each page in index order); always
        yields at least one page, empty for an empty history."""
        while True:
            page = await self.get_history(session_id, limit=limit, before=before)
            yield page
            if not page.has_more or not page.messages:
                return
            before = page.messages[0].index

    async def delete_session(self, session_id: str) -> None:
        """Deletes the session and its history (a response running on it is cancelled first)."""
        await self._request({"type": "session.delete", "session_id": session_id}, session_id)
        self._sessions.pop(session_id, None)

    # Messages and responses.

    async def append(self, session_id: str, *messages: MessageLike) -> MessageAppended:
        """Appends messages (Message, protocol dict, or a string for a user message); when this
        returns they are on disk. The reply has their indices and the new history length."""
        if not messages:
            raise ValueError("append needs at least one message")
        event: JSON = {"type": "message.append", "session_id": session_id}
        if len(messages) == 1:
            event["message"] = message_json(messages[0])
        else:
            event["messages"] = [message_json(m) for m in messages]
        reply = await self._request(event, session_id)
        assert isinstance(reply, MessageAppended)
        return reply

    def stream(self, session_id: str, *, sampling: SamplingLike = None, tool_choice: ToolChoice = None,
               program_id: Optional[str] = None, server_tools: ServerToolsOption = False,
               max_tool_turns: Optional[int] = None, timeout: Optional[float] = None) -> ResponseStream:
        """A response from the session's history, streamed. Nothing is sent until the stream is
        awaited or iterated. `timeout`: per event (default `stream_timeout`).

        server_tools: the model also sees the daemon's configured tools (`list_tools`), all of them
        or (a list of names) only those named; the daemon runs the ones it calls (tool.start / tool.end events), stores their results and goes on
        generating in the same response, at most `max_tool_turns` rounds (daemon default 8).
        The response still stops with finish_reason "tool_calls" at calls of the session's own
        tools (`Response.client_tool_calls`)."""
        event: JSON = {"type": "response.create", "session_id": session_id}
        if sampling is not None:
            event["sampling"] = sampling_json(sampling)
        if tool_choice is not None:
            event["tool_choice"] = tool_choice_json(tool_choice)
        if program_id is not None:
            event["program_id"] = program_id
        if server_tools is not False:
            event["server_tools"] = server_tools_json(server_tools)
        if max_tool_turns is not None:
            event["max_tool_turns"] = max_tool_turns
        self._use(session_id)
        return ResponseStream(self, session_id, event, timeout if timeout is not None else self.stream_timeout)

    async def respond(self, session_id: str, *, sampling: SamplingLike = None,
                      tool_choice: ToolChoice = None, program_id: Optional[str] = None,
                      server_tools: ServerToolsOption = False, max_tool_turns: Optional[int] = None,
                      timeout: Optional[float] = None) -> Response:
        """A response, waited for whole: the final message, finish reason and usage (and, with
        server_tools, `tool_turns` and `server_tool_runs`)."""
        return await self.stream(session_id, sampling=sampling, tool_choice=tool_choice,
                                 program_id=program_id, server_tools=server_tools,
                                 max_tool_turns=max_tool_turns, timeout=timeout).final()

    async def cancel(self, response_id: str) -> None:
        """Cancels a response by id (a stream's own `cancel()` is simpler)."""
        conn = await self._connection()
        await conn.cancel(response_id)

    # Programs and tools: the shape of an agent run, for the daemon's KV cache decisions.

    async def begin_program(self, *, session_id: Optional[str] = None, program_id: Optional[str] = None,
                            metadata: Optional[JSON] = None) -> ProgramBegun:
        event: JSON = {"type": "program.begin"}
        if session_id is not None:
            event["session_id"] = session_id
        if program_id is not None:
            event["program_id"] = program_id
        if metadata is not None:
            event["metadata"] = metadata
        reply = await self._request(event)
        assert isinstance(reply, ProgramBegun)
        return reply

    async def end_program(self, program_id: str) -> ProgramEnded:
        reply = await self._request({"type": "program.end", "program_id": program_id})
        assert isinstance(reply, ProgramEnded)
        return reply

    async def start_tool(self, call_id: str, name: str, *, program_id: Optional[str] = None,
                         session_id: Optional[str] = None, arguments: Optional[JSON] = None) -> ToolStarted:
        event: JSON = {"type": "tool.start", "call_id": call_id, "name": name}
        if program_id is not None:
            event["program_id"] = program_id
        if session_id is not None:
            event["session_id"] = session_id
        if arguments is not None:
            event["arguments"] = arguments
        reply = await self._request(event)
        assert isinstance(reply, ToolStarted)
        return reply

    async def end_tool(self, call_id: str, *, status: str = "ok", result: Optional[str] = None) -> ToolEnded:
        event: JSON = {"type": "tool.end", "call_id": call_id, "status": status}
        if result is not None:
            event["result"] = result
        reply = await self._request(event)
        assert isinstance(reply, ToolEnded)
        return reply

    async def list_tools(self) -> list[ServerTool]:
        """The tools configured in the daemon (`mnemod --tools FILE`), which a response with
        server_tools=True offers the model and runs itself."""
        reply = await self._request({"type": "tools.list"}, idempotent=True)
        assert isinstance(reply, ToolsListed)
        return reply.tools

    async def ping(self) -> float:
        """Round trip of ping/pong, in seconds."""
        start = time.perf_counter()
        await self._request({"type": "ping"}, idempotent=True)
        return time.perf_counter() - start

    async def run(self, session_id: str, prompt: Optional[MessageLike], tools: ToolsLike,
                  **options: Any) -> RunResult:
        """Runs the agent loop model -> tools -> model; see mnemo.agent.run for the options."""
        return await run(self, session_id, prompt, tools, **options)
