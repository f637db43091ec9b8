import type { ErrorCode, ErrorEvent } from "./protocol.js";

/** Base of every error this package throws. */
export class MnemoError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The daemon answered an event with `error` (or a response ended with
 * finish_reason "error"): `code` is the protocol's error code. */
export class ProtocolError extends MnemoError {
  readonly code: ErrorCode;
  /** The offending field's path, for missing_field / invalid_field. */
  readonly field: string | undefined;
  /** The event_id of the client event it answers. */
  readonly eventId: string | undefined;

  constructor(code: ErrorCode, message: string, field?: string, eventId?: string) {
    super(`${code}: ${message}`);
    this.code = code;
    this.field = field;
    this.eventId = eventId;
  }

  static fromEvent(e: ErrorEvent): ProtocolError {
    return new ProtocolError(e.code, e.message, e.field, e.event_id);
  }
}

/** The connection could not be opened, or closed while something waited on it. */
export class ConnectionError extends MnemoError {
  /** HTTP status of a refused upgrade (401: missing or wrong API key). */
  readonly status: number | undefined;
  /** WebSocket close code when the connection closed (1001: daemon shutting down). */
  readonly closeCode: number | undefined;

  constructor(message: string, details: { status?: number; closeCode?: number; cause?: unknown } = {}) {
    super(message, { cause: details.cause });
    this.status = details.status;
    this.closeCode = details.closeCode;
  }
}

/** No reply (or, for a streamed response, no next event) within the timeout. */
export class TimeoutError extends MnemoError {}
