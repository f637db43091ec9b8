"""A streamed response: its events as they arrive, and the final message.

    async for event in client.stream(session_id):
        if isinstance(event, ResponseDelta):
            print(event.delta, end="")

Leaving the loop early (break, an exception, a timeout) sends
response.cancel, and the next request on the session waits for the
cancellation to finish, so it does not meet `busy`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator, Optional

from .errors import ConnectionFailedError, MnemoTimeoutError, error_for
from .events import (ErrorInfo, ResponseCreated, ResponseDelta, ResponseDone,
                     ResponseToolCall, ServerEvent, ToolEnd, ToolStart)
from .objects import JSON, Message, ServerToolRun, ToolCall, Usage

if TYPE_CHECKING:
    from .client import AsyncClient
    from .connection import Connection


@dataclass
class Response:
    """A finished response: what `response.done` reported."""

    response_id: str
    session_id: str
    finish_reason: str  # stop, length, tool_calls, cancelled, error, shutdown
    message: Message  # the last turn's assistant message
    usage: Usage  # summed over the response's turns
    error: Optional[ErrorInfo] = None
    event_id: Optional[str] = field(default=None, repr=False)
    tool_turns: int = 0  # rounds of server-side tools the daemon ran (server_tools=True)
    server_tool_runs: list[ServerToolRun] = field(default_factory=list)  # in the order they started

    @property
    def text(self) -> str:
        return self.message.content

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.message.tool_calls

    @property
    def client_tool_calls(self) -> list[ToolCall]:
        """The calls the daemon did not run itself: the client's to answer."""
        ran = {run.call_id for run in self.server_tool_runs}
        return [call for call in self.message.tool_calls if call.id not in ran]


class Accumulator:
    """Folds a response's events into its message: text so far, tool calls so far, the final Response."""

    def __init__(self) -> None:
        self.response_id: Optional[str] = None
        self.session_id: Optional[str] = None
        self._parts: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._server_runs: list[ServerToolRun] = []  # in start order
        self.response: Optional[Response] = None  # set by response.done

    def add(self, event: ServerEvent) -> Optional[Response]:
        """Takes one event; returns the final Response when `event` is response.done."""
        if isinstance(event, ResponseCreated):
            self.response_id, self.session_id = event.response_id, event.session_id
        elif isinstance(event, ResponseDelta):
            self._parts.append(event.delta)
        elif isinstance(event, ResponseToolCall):
            self._tool_calls.append(event.tool_call)
        elif isinstance(event, ToolStart):
            self._server_runs.append(ServerToolRun(event.call_id, event.name, event.arguments))
        elif isinstance(event, ToolEnd):
            run = next((r for r in self._server_runs if r.call_id == event.call_id and not r.status), None)
            if run is None:  # no tool.start seen
                run = ServerToolRun(event.call_id, event.name)
                self._server_runs.append(run)
            run.status, run.duration_ms, run.output = event.status, event.duration_ms, event.output
            run.output_bytes, run.error = event.output_bytes, event.error
        elif isinstance(event, ResponseDone):
            self.response = Response(event.response_id, event.session_id, event.finish_reason,
                                     event.message, event.usage, event.error, event.event_id,
                                     event.tool_turns, list(self._server_runs))
            return self.response
        return None

    @property
    def done(self) -> bool:
        return self.response is not None

    @property
    def text(self) -> str:
        return self.response.message.content if self.response else "".join(self._parts)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.response.message.tool_calls if self.response else list(self._tool_calls)

    @property
    def server_tool_runs(self) -> list[ServerToolRun]:
        """Server-side tool calls so far; one still running has status ""."""
        return list(self._server_runs)

    @property
    def message(self) -> Message:
        """The final message once done, else the assistant message as generated so far."""
        if self.response is not None:
            return self.response.message
        return Message.assistant(self.text, self._tool_calls)


class ResponseStream:
    """One response.create and its events. Await it to start it (errors such as busy or
    not_found are raised there), iterate it for events, or `await final()` for the Response."""

    def __init__(self, host: AsyncClient, session_id: str, request: JSON,
                 event_timeout: Optional[float]) -> None:
        self.session_id = session_id
        self.response_id: Optional[str] = None
        self._host = host
        self._request = request
        self._event_timeout = event_timeout
        self._queue: asyncio.Queue[ServerEvent | BaseException] = asyncio.Queue()
        self._acc = Accumulator()
        self._conn: Optional[Connection] = None
        self._event_id: Optional[str] = None
        self._started = False
        self._exhausted = False  # every event handed out, or the stream failed
        self._finished = asyncio.Event()  # response.done arrived or the stream failed
        self._cancel_sent = False

    # The connection's side.

    def feed(self, item: ServerEvent | BaseException) -> None:
        if not isinstance(item, BaseException):
            if isinstance(item, ResponseCreated):
                self.response_id = item.response_id
            self._acc.add(item)
        if isinstance(item, (ResponseDone, BaseException)):
            self._finished.set()
        self._queue.put_nowait(item)

    # The caller's side.

    @property
    def accumulator(self) -> Accumulator:
        """Everything received so far (it may run ahead of the events iterated)."""
        return self._acc

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    async def start(self) -> ResponseStream:
        """Sends response.create and waits for response.created."""
        if self._started:
            return self
        self._started = True
        try:
            await self._host._settle(self.session_id)
            self._conn = await self._host._connection()
            self._event_id = await self._conn.start_stream(dict(self._request), self)
            await self._get(self._host.timeout, "response.created")
        except BaseException:
            self._exhausted = True
            self._finished.set()
            if self._conn is not None and self._event_id is not None:
                self._conn.forget_stream(self._event_id, self.response_id)
            raise
        return self

    def __await__(self) -> Generator[Any, None, ResponseStream]:
        return self.start().__await__()

    def __aiter__(self) -> _Iteration:
        return _Iteration(self)

    async def __aenter__(self) -> ResponseStream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        if self._started and not self.finished:
            await self.cancel_and_wait()

    async def next_event(self) -> ServerEvent:
        """The next response.delta, response.tool_call, tool.start / tool.end (server-side tools) or
        response.done; StopAsyncIteration after done.

        A done with finish_reason "error" is raised as the APIError for its code
        (the partial Response on `.response`)."""
        await self.start()
        if self._exhausted:
            raise StopAsyncIteration
        item = await self._get(self._event_timeout, "the next event")
        if isinstance(item, ResponseDone):
            self._exhausted = True
            if item.finish_reason == "error":
                info = item.error or ErrorInfo("internal", "response failed")
                raise error_for(info.code, info.message, event_id=item.event_id, response=self._acc.response)
        return item

    async def final(self) -> Response:
        """Reads the stream to its end and returns the Response (the accumulated message and usage)."""
        await self.start()
        while not self._exhausted:
            await self.next_event()
        if self._acc.response is None:
            raise ConnectionFailedError("the stream ended without response.done")
        return self._acc.response

    async def cancel(self) -> None:
        """Asks the daemon to stop the response; it still ends with response.done ("cancelled")."""
        if self.response_id is None or self.finished or self._cancel_sent or self._conn is None:
            return
        self._cancel_sent = True
        try:
            await self._conn.cancel(self.response_id)
        except ConnectionFailedError:
            pass  # the connection is gone, and the stream fails with it

    async def cancel_and_wait(self, timeout: Optional[float] = None) -> None:
        """Cancels, then waits (up to `timeout`, default the client's) until response.done arrives."""
        await self.cancel()
        try:
            await asyncio.wait_for(self._finished.wait(), timeout or self._host.timeout)
        except asyncio.TimeoutError:
            pass

    async def _get(self, timeout: Optional[float], what: str) -> ServerEvent:
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            self._exhausted = True
            self.abandon()
            raise MnemoTimeoutError(f"response on {self.session_id}: no {what} within {timeout} s") from None
        if isinstance(item, BaseException):
            self._exhausted = True
            raise item
        return item

    def abandon(self) -> None:
        """Stops the response without waiting; callable from synchronous code on the client's loop."""
        if self._started and not self.finished:
            self._host._abandon(self)


class _Iteration:
    """The iterator of one `async for`. CPython drops it as soon as the loop is left, so
    `__del__` sees a loop left early and cancels the response."""

    def __init__(self, stream: ResponseStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _Iteration:
        return self

    async def __anext__(self) -> ServerEvent:
        try:
            return await self._stream.next_event()
        except BaseException:
            self._stream.abandon()
            raise

    def __del__(self) -> None:
        try:
            if not self._stream._exhausted:
                self._stream.abandon()
        except Exception:
            pass  # the loop may be gone at interpreter exit
