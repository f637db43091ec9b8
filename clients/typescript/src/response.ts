// One streamed response: response.created, then deltas and tool calls (and,
// with server_tools, the daemon's tool.start/tool.end around the tools it
// runs), then response.done. Readable as an async iterator and as a promise
// of the end.

import type { Connection, StreamHandler } from "./connection.js";
import { ProtocolError, TimeoutError } from "./errors.js";
import type {
  JsonObject,
  ResponseCreateEvent,
  ResponseCreatedEvent,
  ResponseDoneEvent,
  ResponseEvent,
  ServerEvent,
  ServerToolEndEvent,
  ToolCall,
} from "./protocol.js";

/** One call of a configured tool that the daemon ran during a response
 * (from its tool.start and tool.end). */
export interface ServerToolRun {
  call_id: string;
  name: string;
  arguments: JsonObject;
  /** Absent while the tool runs. */
  status?: "ok" | "error";
  duration_ms?: number;
  /** What the model reads (the stored tool message). */
  output?: string;
  output_bytes?: number;
  error?: ServerToolEndEvent["error"];
}

export interface ResponseOptions {
  /** Aborting sends response.cancel; the response then ends with
   * finish_reason "cancelled" (or its own reason if it finished first). */
  signal?: AbortSignal;
  /** Longest wait for the next event; defaults to the client's timeoutMs. */
  timeoutMs?: number;
}

/** A response that ended with finish_reason "error"; `code` is the error's
 * code and `done` the whole response.done event. */
export class ResponseError extends ProtocolError {
  constructor(readonly done: ResponseDoneEvent) {
    super(done.error?.code ?? "internal", done.error?.message ?? "response failed", undefined, done.event_id);
  }
}

export class ResponseStream implements AsyncIterable<ResponseEvent> {
  /** The event_id of the response.create, echoed in response.created and response.done. */
  readonly eventId: string;
  readonly sessionId: string;
  private id: string | undefined;
  private readonly queue: ResponseEvent[] = [];
  private readonly runs: ServerToolRun[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private finished = false;
  private cancelWanted = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly timeoutMs: number;
  private readonly settled: Promise<ResponseDoneEvent>;
  private resolveSettled!: (done: ResponseDoneEvent) => void;
  private rejectSettled!: (error: Error) => void;
  private readonly createdPromise: Promise<ResponseCreatedEvent>;
  private resolveCreated!: (created: ResponseCreatedEvent) => void;
  private rejectCreated!: (error: Error) => void;
  private removeAbortListener: (() => void) | undefined;
  private readonly handler: StreamHandler = {
    event: (e) => this.onEvent(e),
    fail: (error) => this.fail(error),
  };

  constructor(private readonly connection: Connection, request: ResponseCreateEvent, options: ResponseOptions = {}) {
    this.sessionId = request.session_id;
    this.timeoutMs = options.timeoutMs ?? connection.options.timeoutMs;
    this.settled = new Promise((resolve, reject) => {
      this.resolveSettled = resolve;
      this.rejectSettled = reject;
    });
    this.createdPromise = new Promise((resolve, reject) => {
      this.resolveCreated = resolve;
      this.rejectCreated = reject;
    });
    // Whoever only iterates must not see an unhandled rejection from these.
    this.settled.catch(() => {});
    this.createdPromise.catch(() => {});

    const signal = options.signal;
    if (signal?.aborted) {
      this.eventId = request.event_id ?? "";
      this.fail(signal.reason as Error);
      return;
    }
    try {
      this.eventId = connection.send(request);
    } catch (error) {
      // A closed connection: fail the stream rather than throw from respond().
      this.eventId = request.event_id ?? "";
      this.fail(error as Error);
      return;
    }
    connection.expectReply(this.eventId, this.handler);
    this.armTimer();
    if (signal) {
      const onAbort = () => void this.cancel();
      signal.addEventListener("abort", onAbort, { once: true });
      this.removeAbortListener = () => signal.removeEventListener("abort", onAbort);
    }
  }

  /** The response's id, once response.created has arrived. */
  get responseId(): string | undefined {
    return this.id;
  }

  /** Resolves with response.created; rejects if the daemon refused the
   * response (busy, not_found, invalid_request, ...). */
  created(): Promise<ResponseCreatedEvent> {
    return this.createdPromise;
  }

  /** Resolves with response.done (its `message` is the accumulated assistant
   * message). Rejects with ResponseError on finish_reason "error", with
   * ProtocolError if the daemon refused the response, ConnectionError or
   * TimeoutError otherwise. */
  done(): Promise<ResponseDoneEvent> {
    return this.settled;
  }

  /** The generated text. */
  async text(): Promise<string> {
    return (await this.settled).message.content;
  }

  /** The tool calls of the response's last message (with server_tools,
   * those the daemon ran in that turn too: see `clientToolCalls`). */
  async toolCalls(): Promise<ToolCall[]> {
    return (await this.settled).message.tool_calls ?? [];
  }

  /** The tool calls the daemon left to the client: the last message's calls
   * it did not run itself. */
  async clientToolCalls(): Promise<ToolCall[]> {
    const calls = await this.toolCalls();
    const ran = new Set(this.runs.map((r) => r.call_id));
    return calls.filter((c) => !ran.has(c.id));
  }

  /** The server-side tools run so far, in the order they started (final
   * once `done()` has resolved). */
  get serverToolRuns(): ServerToolRun[] {
    return this.runs.map((r) => ({ ...r }));
  }

  /** Asks the daemon to stop the response and waits until it has ended, so
   * the session is free again when this resolves. Never rejects. */
  async cancel(): Promise<void> {
    if (this.finished) return;
    this.cancelWanted = true;
    if (this.id !== undefined) this.sendCancel(this.id);
    await this.settled.then(() => {}, () => {});
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ResponseEvent> {
    let ended = false;
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next) {
          if (next.type === "response.done") {
            ended = true;
            if (next.finish_reason === "error") throw new ResponseError(next);
          }
          yield next;
          if (ended) return;
          continue;
        }
        if (this.failure) {
          ended = true;
          throw this.failure;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      // Leaving the loop early (break, return, a throw in its body) cancels.
      if (!ended) await this.cancel();
    }
  }

  private onEvent(e: ServerEvent): void {
    if (this.finished) return;
    this.armTimer();
    switch (e.type) {
      case "response.created":
        this.id = e.response_id;
        this.connection.forgetReply(this.eventId);
        this.connection.expectStream(e.response_id, this.handler);
        this.resolveCreated(e);
        this.push(e);
        if (this.cancelWanted) this.sendCancel(e.response_id);
        return;
      case "response.delta":
      case "response.tool_call":
        this.push(e);
        return;
      case "tool.start":
        this.runs.push({ call_id: e.call_id, name: e.name, arguments: e.arguments ?? {} });
        this.push(e);
        return;
      case "tool.end": {
        let run = this.runs.find((r) => r.call_id === e.call_id && r.status === undefined);
        if (!run) this.runs.push(run = { call_id: e.call_id, name: e.name, arguments: {} });
        run.status = e.status;
        run.duration_ms = e.duration_ms;
        run.output = e.output;
        run.output_bytes = e.output_bytes;
        if (e.error !== undefined) run.error = e.error;
        this.push(e);
        return;
      }
      case "response.done":
        this.finish();
        this.push(e);
        if (e.finish_reason === "error") this.rejectSettled(new ResponseError(e));
        else this.resolveSettled(e);
        return;
      case "error":
        return this.fail(ProtocolError.fromEvent(e));
      default:
        return this.fail(new ProtocolError("internal", `unexpected ${e.type} for response.create ${this.eventId}`));
    }
  }

  private push(e: ResponseEvent): void {
    this.queue.push(e);
    this.wakeReader();
  }

  private fail(error: Error): void {
    if (this.finished) return;
    this.finish();
    this.failure = error;
    this.rejectCreated(error);
    this.rejectSettled(error);
    this.wakeReader();
  }

  private finish(): void {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.removeAbortListener?.();
    this.connection.forgetReply(this.eventId);
    if (this.id !== undefined) this.connection.forgetStream(this.id);
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private armTimer(): void {
    if (this.timeoutMs <= 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // Stop the daemon's work too; its late events go to onUnhandled.
      if (this.id !== undefined) this.sendCancel(this.id);
      this.fail(new TimeoutError(`response ${this.id ?? this.eventId}: no event within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
  }

  private sendCancel(responseId: string): void {
    if (this.connection.closed) return;
    this.connection.sendIgnoringReply({ type: "response.cancel", response_id: responseId });
  }
}
