"""Exceptions raised by the SDK.

Errors the daemon reports carry its protocol error code (docs/protocol.md,
`error` event); each code has its own class so callers can catch exactly
the failures they can handle (`except NotFoundError`).
"""

from __future__ import annotations

from typing import Any, Optional


class MnemoError(Exception):
    """Base of every exception the SDK raises."""


class ConnectionFailedError(MnemoError):
    """The WebSocket could not be opened, or it closed under a request."""


class AuthenticationError(ConnectionFailedError):
    """The daemon refused the upgrade with HTTP 401: the API key is missing or wrong."""


class MnemoTimeoutError(MnemoError, TimeoutError):
    """A reply or the next event of a stream did not arrive in time."""


class APIError(MnemoError):
    """An `error` event, or a `response.done` with finish_reason "error".

    `code` is the protocol's error code, `field` the offending field's path
    when the daemon named one, `event_id` the client event it answers.
    """

    code: str = "unknown"

    def __init__(self, message: str, *, code: Optional[str] = None,
                 field: Optional[str] = None, event_id: Optional[str] = None,
                 response: Any = None) -> None:
        super().__init__(f"{code or self.code}: {message}")
        if code is not None:
            self.code = code
        self.message = message
        self.field = field
        self.event_id = event_id
        # For a failed response: the Response (partial message and usage).
        self.response = response


class InvalidJSONError(APIError):
    code = "invalid_json"


class InvalidEventError(APIError):
    code = "invalid_event"


class UnknownTypeError(APIError):
    code = "unknown_type"


class MissingFieldError(APIError):
    code = "missing_field"


class InvalidFieldError(APIError):
    code = "invalid_field"


class FrameTooLargeError(APIError):
    code = "frame_too_large"


class NotFoundError(APIError):
    code = "not_found"


class ConflictError(APIError):
    code = "conflict"


class BusyError(APIError):
    code = "busy"


class InvalidRequestError(APIError):
    code = "invalid_request"


class OverloadedError(APIError):
    code = "overloaded"


class ShuttingDownError(APIError):
    code = "shutting_down"


class StorageFullError(APIError):
    """The daemon's disk is full: nothing was saved. Reads still work; retry
    writes once space is freed."""
    code = "storage_full"


class StorageError(APIError):
    """The daemon's store failed otherwise (I/O error, damaged file,
    read-only, locked): nothing was saved. The message says what to do."""
    code = "storage_error"


class InternalError(APIError):
    code = "internal"


_BY_CODE = {cls.code: cls for cls in (
    InvalidJSONError, InvalidEventError, UnknownTypeError, MissingFieldError,
    InvalidFieldError, FrameTooLargeError, NotFoundError, ConflictError,
    BusyError, InvalidRequestError, OverloadedError, ShuttingDownError,
    StorageFullError, StorageError, InternalError)}


def error_for(code: str, message: str, *, field: Optional[str] = None,
              event_id: Optional[str] = None, response: Any = None) -> APIError:
    """The exception for a protocol error code; an unknown code gives a plain APIError."""
    cls = _BY_CODE.get(code, APIError)
    return cls(message, code=code, field=field, event_id=event_id, response=response)
