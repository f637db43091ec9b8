"""Server events (docs/protocol.md, "Server events") as typed dataclasses.

`parse_event` picks the class by the event's `type`; a type this SDK does
not know becomes an `UnknownEvent` rather than an error, so a newer daemon
keeps working with an older SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Optional

from .objects import JSON, Message, ServerTool, Session, ToolCall, Usage


@dataclass
class ServerEvent:
    type: ClassVar[str] = ""
    event_id: Optional[str] = field(default=None, kw_only=True)
    raw: JSON = field(default_factory=dict, kw_only=True, repr=False, compare=False)


@dataclass
class SessionCreated(ServerEvent):
    type: ClassVar[str] = "session.created"
    session: Session


@dataclass
class SessionResumed(ServerEvent):
    type: ClassVar[str] = "session.resumed"
    session: Session


@dataclass
class SessionListed(ServerEvent):
    type: ClassVar[str] = "session.listed"
    sessions: list[Session]
    has_more: bool = False


@dataclass
class SessionHistory(ServerEvent):
    """One page of a history, in index order; `has_more`: older messages exist."""

    type: ClassVar[str] = "session.history"
    session: Session
    messages: list[Message]
    has_more: bool = False


@dataclass
class SessionDeleted(ServerEvent):
    type: ClassVar[str] = "session.deleted"
    session_id: str


@dataclass
class MessageAppended(ServerEvent):
    type: ClassVar[str] = "message.appended"
    session_id: str
    indices: list[int]
    message_count: int


@dataclass
class ResponseCreated(ServerEvent):
    type: ClassVar[str] = "response.created"
    response_id: str
    session_id: str


@dataclass
class ResponseDelta(ServerEvent):
    type: ClassVar[str] = "response.delta"
    response_id: str
    delta: str


@dataclass
class ResponseToolCall(ServerEvent):
    type: ClassVar[str] = "response.tool_call"
    response_id: str
    tool_call: ToolCall


@dataclass
class ErrorInfo:
    code: str
    message: str


@dataclass
class ResponseDone(ServerEvent):
    type: ClassVar[str] = "response.done"
    response_id: str
    session_id: str
    finish_reason: str  # stop, length, tool_calls, cancelled, error, shutdown
    message: Message
    usage: Usage  # summed over every turn of the response
    error: Optional[ErrorInfo] = None  # only with finish_reason "error"
    tool_turns: int = 0  # rounds of server-side tools run within the response


@dataclass
class ProgramBegun(ServerEvent):
    type: ClassVar[str] = "program.begun"
    program_id: str
    started_at: int
    session_id: Optional[str] = None


@dataclass
class ProgramEnded(ServerEvent):
    type: ClassVar[str] = "program.ended"
    program_id: str
    duration_ms: float


@dataclass
class ToolStarted(ServerEvent):
    type: ClassVar[str] = "tool.started"
    call_id: str
    started_at: int


@dataclass
class ToolEnded(ServerEvent):
    type: ClassVar[str] = "tool.ended"
    call_id: str
    status: str
    duration_ms: float


@dataclass
class ToolStart(ServerEvent):
    """The daemon started a configured tool the model called (response.create with server_tools).
    Not the reply to the client's own tool.start, which is ToolStarted."""

    type: ClassVar[str] = "tool.start"
    response_id: str
    session_id: str
    call_id: str
    name: str
    arguments: JSON = field(default_factory=dict)
    program_id: Optional[str] = None


@dataclass
class ToolEnd(ServerEvent):
    """A server-side tool finished; `output` is what the model reads (stored as a tool message).
    Not the reply to the client's own tool.end, which is ToolEnded."""

    type: ClassVar[str] = "tool.end"
    response_id: str
    session_id: str
    call_id: str
    name: str
    status: str  # "ok" or "error"
    duration_ms: float = 0.0
    output_bytes: int = 0
    output: str = ""
    error: Optional[str] = None  # on failure: timeout, cancelled, too_large, crashed, unavailable, ...


@dataclass
class ToolsListed(ServerEvent):
    type: ClassVar[str] = "tools.listed"
    tools: list[ServerTool]


@dataclass
class Pong(ServerEvent):
    type: ClassVar[str] = "pong"


@dataclass
class Error(ServerEvent):
    type: ClassVar[str] = "error"
    code: str
    message: str
    field: Optional[str] = None


@dataclass
class UnknownEvent(ServerEvent):
    """An event whose type this SDK does not know; `raw` holds it whole."""

    name: str = ""

    @property  # type: ignore[override]
    def type(self) -> str:  # noqa: D401 - mirrors the protocol field
        return self.name


EVENT_TYPES: dict[str, type[ServerEvent]] = {cls.type: cls for cls in (
    SessionCreated, SessionResumed, SessionListed, SessionHistory, SessionDeleted,
    MessageAppended, ResponseCreated, ResponseDelta, ResponseToolCall, ResponseDone,
    ProgramBegun, ProgramEnded, ToolStarted, ToolEnded, ToolStart, ToolEnd, ToolsListed, Pong, Error)}

# How a JSON value becomes a field's value, for fields that are not plain JSON
# (`Error.message` and `ToolEnd.error` are plain strings, so those classes are left out).
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "session": Session.from_json,
    "sessions": lambda v: [Session.from_json(s) for s in v],
    "messages": lambda v: [Message.from_json(m) for m in v],
    "message": Message.from_json,
    "tool_call": ToolCall.from_json,
    "usage": Usage.from_json,
    "tools": lambda v: [ServerTool.from_json(t) for t in v],
    "error": lambda v: ErrorInfo(code=v.get("code", ""), message=v.get("message", "")),
}


def parse_event(obj: JSON) -> ServerEvent:
    """The typed event for one decoded server message.

    Raises ValueError when the message is not an object with a string
    `type`, or a known event lacks a field it must have.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ValueError(f"server event is not an object with a string 'type': {obj!r:.200}")
    cls = EVENT_TYPES.get(obj["type"])
    if cls is None:
        return UnknownEvent(name=obj["type"], event_id=obj.get("event_id"), raw=obj)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "raw" or f.name not in obj or obj[f.name] is None:
            continue
        value = obj[f.name]
        convert = None if cls in (Error, ToolEnd) else _CONVERT.get(f.name)
        kwargs[f.name] = convert(value) if convert else value
    try:
        return cls(raw=obj, **kwargs)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"malformed '{obj['type']}' event: {exc}") from exc
