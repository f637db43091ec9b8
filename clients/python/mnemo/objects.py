"""The protocol's objects (docs/protocol.md, "Objects") as dataclasses.

`from_json` reads what the daemon sends and ignores fields it does not know,
so a newer daemon does not break an older SDK; `to_json` writes what a
client event carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional, Union

JSON = dict[str, Any]


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the KV cache
    completion_tokens: int = 0

    @classmethod
    def from_json(cls, obj: Optional[JSON]) -> Usage:
        obj = obj or {}
        return cls(prompt_tokens=obj.get("prompt_tokens", 0),
                   cached_tokens=obj.get("cached_tokens", 0),
                   completion_tokens=obj.get("completion_tokens", 0))

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens,
                     self.cached_tokens + other.cached_tokens,
                     self.completion_tokens + other.completion_tokens)


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: JSON = field(default_factory=dict)  # parsed, not a JSON string

    @classmethod
    def from_json(cls, obj: JSON) -> ToolCall:
        return cls(id=obj["id"], name=obj["name"], arguments=obj.get("arguments") or {})

    def to_json(self) -> JSON:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass
class Message:
    role: str  # "system", "user", "assistant" or "tool"
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: Optional[str] = None  # tool messages: the call answered
    name: Optional[str] = None
    index: Optional[int] = None  # set by the daemon once stored
    created_at: Optional[int] = None  # ms since the epoch, set by the daemon

    @classmethod
    def user(cls, content: str) -> Message:
        return cls("user", content)

    @classmethod
    def system(cls, content: str) -> Message:
        return cls("system", content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: Optional[list[ToolCall]] = None) -> Message:
        return cls("assistant", content, tool_calls=list(tool_calls or []))

    @classmethod
    def tool(cls, tool_call_id: str, content: str, name: Optional[str] = None) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id, name=name)

    @classmethod
    def from_json(cls, obj: JSON) -> Message:
        return cls(role=obj["role"], content=obj.get("content", ""),
                   tool_calls=[ToolCall.from_json(c) for c in obj.get("tool_calls") or []],
                   tool_call_id=obj.get("tool_call_id"), name=obj.get("name"),
                   index=obj.get("index"), created_at=obj.get("created_at"))

    def to_json(self) -> JSON:
        """The message as `message.append` takes it (index and created_at are the daemon's)."""
        out: JSON = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.to_json() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass
class Sampling:
    """Sampling settings; fields left None are not sent, so the daemon's defaults apply."""

    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    min_p: Optional[float] = None
    repetition_penalty: Optional[float] = None
    max_tokens: Optional[int] = None
    seed: Optional[int] = None
    stop: Optional[Union[str, list[str]]] = None

    def to_json(self) -> JSON:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


@dataclass
class Session:
    id: str
    created_at: int
    updated_at: int
    system: str = ""
    sampling: JSON = field(default_factory=dict)
    tools: list[JSON] = field(default_factory=list)  # OpenAI-style function tools
    metadata: JSON = field(default_factory=dict)
    message_count: int = 0

    @classmethod
    def from_json(cls, obj: JSON) -> Session:
        return cls(id=obj["id"], created_at=obj.get("created_at", 0),
                   updated_at=obj.get("updated_at", 0), system=obj.get("system", ""),
                   sampling=obj.get("sampling") or {}, tools=obj.get("tools") or [],
                   metadata=obj.get("metadata") or {},
                   message_count=obj.get("message_count", 0))


@dataclass
class ServerTool:
    """A tool configured in the daemon (`mnemod --tools FILE`), as `tools.list` reports it."""

    name: str
    description: str = ""
    parameters: JSON = field(default_factory=dict)  # JSON Schema of the arguments
    provider: str = ""  # the configured MCP server, plugin or command
    kind: str = ""  # "mcp", "plugin" or "command"

    @classmethod
    def from_json(cls, obj: JSON) -> ServerTool:
        return cls(name=obj["name"], description=obj.get("description", ""),
                   parameters=obj.get("parameters") or {}, provider=obj.get("provider", ""),
                   kind=obj.get("kind", ""))


@dataclass
class ServerToolRun:
    """One call of a configured tool that the daemon ran during a response (its tool.start / tool.end)."""

    call_id: str
    name: str
    arguments: JSON = field(default_factory=dict)
    status: str = ""  # "ok" or "error"; "" while it runs
    duration_ms: float = 0.0
    output: str = ""  # what the model reads (the stored tool message)
    output_bytes: int = 0
    error: Optional[str] = None  # on failure: timeout, cancelled, too_large, crashed, unavailable, ...


MessageLike = Union[Message, JSON, str]


def message_json(message: MessageLike) -> JSON:
    """A message for `message.append`: a Message, a protocol dict, or a plain string (a user message)."""
    if isinstance(message, Message):
        return message.to_json()
    if isinstance(message, str):
        return {"role": "user", "content": message}
    if isinstance(message, dict):
        return message
    raise TypeError(f"expected a Message, dict or str, got {type(message).__name__}")


def sampling_json(sampling: Union[Sampling, JSON, None]) -> Optional[JSON]:
    if sampling is None:
        return None
    if isinstance(sampling, Sampling):
        return sampling.to_json()
    if isinstance(sampling, dict):
        return sampling
    raise TypeError(f"expected Sampling or dict, got {type(sampling).__name__}")
