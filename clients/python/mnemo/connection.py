"""One WebSocket to mnemod: sends client events, routes server events back.

Replies are matched to requests by `event_id`. A response's events are
routed to its stream: by `event_id` until `response.created` names the
response, by `response_id` after that (deltas and tool calls carry no
event_id). When the socket closes, every waiting request and stream fails
with ConnectionFailedError; reconnecting is the client's job.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
from typing import Any, Callable, Optional, Protocol

import websockets
import websockets.exceptions

from .errors import (AuthenticationError, ConnectionFailedError, MnemoTimeoutError,
                     NotFoundError, error_for)
from .events import Error, ResponseCreated, ResponseDone, ServerEvent, parse_event
from .objects import JSON

log = logging.getLogger("mnemo")


class StreamSink(Protocol):
    """What receives a response's events: the events, or the exception that ends the stream."""

    def feed(self, item: ServerEvent | BaseException) -> None: ...


class EventIds:
    """Event ids unique within a client: a random prefix (so two clients' logs do not look alike) and a counter."""

    def __init__(self) -> None:
        self._prefix = f"py{secrets.token_hex(3)}"
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}_{next(self._counter)}"


class Connection:
    def __init__(self, ws: Any, url: str, next_id: Callable[[], str]) -> None:
        self.url = url
        self._ws = ws
        self._next_id = next_id
        self._pending: dict[str, asyncio.Future[ServerEvent]] = {}
        self._starting: dict[str, StreamSink] = {}  # by event_id, before response.created
        self._streams: dict[str, StreamSink] = {}  # by response_id
        self._cancels: dict[str, str] = {}  # response.cancel event_id -> response_id
        self._closed_error: Optional[ConnectionFailedError] = None
        self.on_event: Optional[Callable[[ServerEvent], None]] = None  # events nobody waits for
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(cls, url: str, api_key: Optional[str], timeout: float,
                   next_id: Callable[[], str]) -> Connection:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        try:
            ws = await websockets.connect(
                url, extra_headers=headers, open_timeout=timeout,
                # The daemon is local and trusted; a session's history may exceed any fixed cap.
                max_size=None, compression=None)
        except websockets.exceptions.InvalidStatusCode as exc:
            if exc.status_code == 401:
                raise AuthenticationError(
                    f"{url}: the daemon refused the API key (HTTP 401)"
                    if api_key else f"{url}: the daemon requires an API key (HTTP 401); set MNEMO_API_KEY") from exc
            raise ConnectionFailedError(f"{url}: upgrade refused with HTTP {exc.status_code}") from exc
        except asyncio.TimeoutError as exc:
            raise ConnectionFailedError(f"{url}: no WebSocket handshake within {timeout} s") from exc
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            raise ConnectionFailedError(f"{url}: {exc}") from exc
        return cls(ws, url, next_id)

    @property
    def closed(self) -> bool:
        return self._closed_error is not None

    async def close(self) -> None:
        await self._ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def request(self, event: JSON, timeout: Optional[float]) -> ServerEvent:
        """Sends `event` and returns the reply; an `error` reply is raised as its APIError."""
        event_id = event.setdefault("event_id", self._next_id())
        future: asyncio.Future[ServerEvent] = asyncio.get_running_loop().create_future()
        self._pending[event_id] = future
        try:
            await self._send(event)
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise MnemoTimeoutError(f"no reply to {event['type']} (event_id {event_id}) within {timeout} s") from None
        finally:
            self._pending.pop(event_id, None)

    async def start_stream(self, event: JSON, sink: StreamSink) -> str:
        """Sends a response.create whose events go to `sink`; returns its event_id."""
        event_id = event.setdefault("event_id", self._next_id())
        self._starting[event_id] = sink
        try:
            await self._send(event)
        except BaseException:
            self._starting.pop(event_id, None)
            raise
        return event_id

    def forget_stream(self, event_id: str, response_id: Optional[str]) -> None:
        self._starting.pop(event_id, None)
        if response_id:
            self._streams.pop(response_id, None)

    async def cancel(self, response_id: str) -> None:
        """Sends response.cancel; its only possible reply, not_found, means the response already ended."""
        event_id = self._next_id()
        self._cancels[event_id] = response_id
        await self._send({"type": "response.cancel", "event_id": event_id, "response_id": response_id})

    async def _send(self, event: JSON) -> None:
        if self._closed_error is not None:
            raise self._closed_error
        try:
            await self._ws.send(json.dumps(event, ensure_ascii=False))
        except websockets.exceptions.ConnectionClosed as exc:
            raise ConnectionFailedError(f"{self.url}: connection closed ({exc})") from exc

    async def _read_loop(self) -> None:
        reason = "connection closed"
        try:
            async for raw in self._ws:
                self._dispatch(raw)
        except websockets.exceptions.ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        except Exception as exc:  # a bug in dispatch must not leave requests waiting forever
            log.exception("mnemo: reader failed")
            reason = f"reader failed: {exc!r}"
        else:
            rcvd = self._ws.close_rcvd
            if rcvd is not None:
                reason = f"connection closed by the daemon (code {rcvd.code}{', ' + rcvd.reason if rcvd.reason else ''})"
        self._fail_all(ConnectionFailedError(f"{self.url}: {reason}"))

    def _fail_all(self, error: ConnectionFailedError) -> None:
        self._closed_error = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        for sink in list(self._starting.values()) + list(self._streams.values()):
            sink.feed(error)
        self._pending.clear()
        self._starting.clear()
        self._streams.clear()
        self._cancels.clear()

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            obj = json.loads(raw)
            event = parse_event(obj)
        except ValueError as exc:
            log.warning("mnemo: ignoring a malformed server event: %s", exc)
            return
        event_id = event.event_id
        if isinstance(event, ResponseCreated) and event_id in self._starting:
            sink = self._starting.pop(event_id)
            self._streams[event.response_id] = sink
            sink.feed(event)
            return
        response_id = obj.get("response_id")
        if isinstance(response_id, str) and response_id in self._streams and not isinstance(event, Error):
            sink = self._streams[response_id]
            if isinstance(event, ResponseDone):
                del self._streams[response_id]
                for cancel_id in [k for k, v in self._cancels.items() if v == response_id]:
                    del self._cancels[cancel_id]
            sink.feed(event)
            return
        if event_id is None:
            self._unsolicited(event)
            return
        if isinstance(event, Error):
            error = error_for(event.code, event.message, field=event.field, event_id=event_id)
            if event_id in self._pending:
                self._pending.pop(event_id).set_exception(error)
            elif event_id in self._starting:
                self._starting.pop(event_id).feed(error)
            elif event_id in self._cancels:
                # The response ended while the cancel was on its way: nothing to do.
                response_id = self._cancels.pop(event_id)
                if not isinstance(error, NotFoundError):
                    log.warning("mnemo: cancelling %s failed: %s", response_id, error)
            else:
                self._unsolicited(event)
            return
        future = self._pending.pop(event_id, None)
        if future is not None and not future.done():
            future.set_result(event)
        else:
            self._unsolicited(event)

    def _unsolicited(self, event: ServerEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("mnemo: on_event callback failed")
        else:
            log.debug("mnemo: unmatched event %s", event)

