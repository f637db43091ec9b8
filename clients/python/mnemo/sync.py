"""The blocking client: AsyncClient's surface, run on an event loop in a background thread.

    with Client() as client:
        session = client.create_session()
        client.append(session.id, "Hello")
        for event in client.stream(session.id):
            ...

Leaving a `for` over a stream early cancels the response, as in the async client.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Callable, Coroutine, Iterator, Optional, TypeVar

from .agent import RunResult
from .client import (AsyncClient, History, HistoryPage, SamplingLike, ServerToolsOption, SessionPage,
                     ToolChoice)
from .errors import MnemoError
from .events import (MessageAppended, ProgramBegun, ProgramEnded, ServerEvent, ToolEnded,
                     ToolStarted)
from .objects import JSON, MessageLike, ServerTool, Session
from .stream import Accumulator, Response, ResponseStream
from .tools import ToolsLike

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mnemo-client", daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()


class ResponseStreamSync:
    """A streamed response for plain `for` loops; see ResponseStream."""

    def __init__(self, client: Client, stream: ResponseStream) -> None:
        self._client = client
        self._stream = stream

    @property
    def session_id(self) -> str:
        return self._stream.session_id

    @property
    def response_id(self) -> Optional[str]:
        return self._stream.response_id

    @property
    def accumulator(self) -> Accumulator:
        return self._stream.accumulator

    def start(self) -> ResponseStreamSync:
        self._client._call(self._stream.start())
        return self

    def __iter__(self) -> Iterator[ServerEvent]:
        self.start()
        try:
            while True:
                try:
                    event = self._client._call(self._stream.next_event())
                except StopAsyncIteration:
                    return
                yield event
        finally:
            # A generator left early is closed at once (CPython), which lands here.
            if not self._stream._exhausted and not self._stream.finished:
                try:
                    self._client._call(self._stream.cancel_and_wait())
                except (RuntimeError, MnemoError):
                    pass  # the client was closed, and the response with it

    def final(self) -> Response:
        return self._client._call(self._stream.final())

    def cancel(self) -> None:
        self._client._call(self._stream.cancel())

    def __enter__(self) -> ResponseStreamSync:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self._stream.finished:
            self._client._call(self._stream.cancel_and_wait())


class Client:
    """The blocking twin of AsyncClient; same arguments, same methods, same exceptions."""

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, **options: Any) -> None:
        self._async = AsyncClient(url, api_key, **options)  # first: a bad URL must not leave a thread behind
        self._loop = _LoopThread()
        self._closed = False

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.call(coro)

    @property
    def url(self) -> str:
        return self._async.url

    @property
    def reconnects(self) -> int:
        return self._async.reconnects

    @property
    def connected(self) -> bool:
        return self._async.connected

    @property
    def on_event(self) -> Optional[Callable[[ServerEvent], None]]:
        return self._async.on_event

    @on_event.setter
    def on_event(self, callback: Optional[Callable[[ServerEvent], None]]) -> None:
        """Called on the client's loop thread with events no call waits for."""
        self._async.on_event = callback

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        self._call(self._async.connect())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._async.close())
        finally:
            self._loop.stop()

    def create_session(self, *, system: Optional[str] = None, sampling: SamplingLike = None,
                       tools: Optional[ToolsLike] = None, metadata: Optional[JSON] = None) -> Session:
        return self._call(self._async.create_session(system=system, sampling=sampling, tools=tools,
                                                     metadata=metadata))

    def resume_session(self, session_id: str) -> Session:
        return self._call(self._async.resume_session(session_id))

    def list_sessions(self, *, limit: Optional[int] = None, after: Optional[str] = None) -> SessionPage:
        return self._call(self._async.list_sessions(limit=limit, after=after))

    def get_session(self, session_id: str) -> History:
        return self._call(self._async.get_session(session_id))

    def get_history(self, session_id: str, *, limit: Optional[int] = None,
                    before: Optional[int] = None) -> HistoryPage:
        return self._call(self._async.get_history(session_id, limit=limit, before=before))

    def history_pages(self, session_id: str, *, limit: Optional[int] = None,
                      before: Optional[int] = None) -> Iterator[HistoryPage]:
        pages: AsyncIterator[HistoryPage] = self._async.history_pages(session_id, limit=limit, before=before)

        async def next_page() -> HistoryPage:  # run_coroutine_threadsafe takes coroutines only
            return await pages.__anext__()

        while True:
            try:
                page = self._call(next_page())
            except StopAsyncIteration:
                return
            yield page

    def delete_session(self, session_id: str) -> None:
        self._call(self._async.delete_session(session_id))

    def append(self, session_id: str, *messages: MessageLike) -> MessageAppended:
        return self._call(self._async.append(session_id, *messages))

    def stream(self, session_id: str, *, sampling: SamplingLike = None, tool_choice: ToolChoice = None,
               program_id: Optional[str] = None, server_tools: ServerToolsOption = False,
               max_tool_turns: Optional[int] = None, timeout: Optional[float] = None) -> ResponseStreamSync:
        async def make() -> ResponseStream:  # built on the loop that will run it
            return self._async.stream(session_id, sampling=sampling, tool_choice=tool_choice,
                                      program_id=program_id, server_tools=server_tools,
                                      max_tool_turns=max_tool_turns, timeout=timeout)
        return ResponseStreamSync(self, self._call(make()))

    def respond(self, session_id: str, *, sampling: SamplingLike = None, tool_choice: ToolChoice = None,
                program_id: Optional[str] = None, server_tools: ServerToolsOption = False,
                max_tool_turns: Optional[int] = None, timeout: Optional[float] = None) -> Response:
        return self._call(self._async.respond(session_id, sampling=sampling, tool_choice=tool_choice,
                                              program_id=program_id, server_tools=server_tools,
                                              max_tool_turns=max_tool_turns, timeout=timeout))

    def cancel(self, response_id: str) -> None:
        self._call(self._async.cancel(response_id))

    def begin_program(self, *, session_id: Optional[str] = None, program_id: Optional[str] = None,
                      metadata: Optional[JSON] = None) -> ProgramBegun:
        return self._call(self._async.begin_program(session_id=session_id, program_id=program_id,
                                                    metadata=metadata))

    def end_program(self, program_id: str) -> ProgramEnded:
        return self._call(self._async.end_program(program_id))

    def start_tool(self, call_id: str, name: str, *, program_id: Optional[str] = None,
                   session_id: Optional[str] = None, arguments: Optional[JSON] = None) -> ToolStarted:
        return self._call(self._async.start_tool(call_id, name, program_id=program_id,
                                                 session_id=session_id, arguments=arguments))

    def end_tool(self, call_id: str, *, status: str = "ok", result: Optional[str] = None) -> ToolEnded:
        return self._call(self._async.end_tool(call_id, status=status, result=result))

    def list_tools(self) -> list[ServerTool]:
        return self._call(self._async.list_tools())

    def ping(self) -> float:
        return self._call(self._async.ping())

    def run(self, session_id: str, prompt: Optional[MessageLike], tools: ToolsLike, **options: Any) -> RunResult:
        """See mnemo.agent.run; tools run in worker threads, `on_event` on the client's loop thread."""
        return self._call(self._async.run(session_id, prompt, tools, **options))
