"""Python SDK for mnemod, Mnemo's serving daemon (WebSocket session protocol, docs/protocol.md)."""

from .agent import RunResult, ToolRun, Turn, run
from .client import AsyncClient, History, SessionPage
from .config import DEFAULT_URL, resolve_api_key, resolve_url
from .errors import (APIError, AuthenticationError, BusyError, ConflictError,
                     ConnectionFailedError, FrameTooLargeError, InternalError,
                     InvalidEventError, InvalidFieldError, InvalidJSONError,
                     InvalidRequestError, MissingFieldError, MnemoError, MnemoTimeoutError,
                     NotFoundError, OverloadedError, ShuttingDownError, UnknownTypeError,
                     error_for)
from .events import (EVENT_TYPES, Error, ErrorInfo, MessageAppended, Pong, ProgramBegun,
                     ProgramEnded, ResponseCreated, ResponseDelta, ResponseDone,
                     ResponseToolCall, ServerEvent, SessionCreated, SessionDeleted,
                     SessionHistory, SessionListed, SessionResumed, ToolEnded, ToolStarted,
                     UnknownEvent, parse_event)
from .objects import Message, Sampling, Session, ToolCall, Usage
from .stream import Accumulator, Response, ResponseStream
from .sync import Client, ResponseStreamSync
from .tools import Tool, ToolRegistry, function_schema, tool, type_schema

__version__ = "0.1.0"

import types as _types

__all__ = [name for name, value in globals().items()
           if not name.startswith("_") and not isinstance(value, _types.ModuleType)]
