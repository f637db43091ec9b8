// One WebSocket to mnemod and the routing of what comes back: replies by the
// event_id the client chose, response deltas and tool calls by response_id.

import { ConnectionError, MnemoError, ProtocolError, TimeoutError } from "./errors.js";
import type { ClientEvent, ReplyOf, ServerEvent } from "./protocol.js";
import { openWebSocket, type WebSocketLike } from "./transport.js";
import type { ResolvedOptions } from "./options.js";

/** Hears the server events that answer one client event (by event_id). */
export interface ReplyHandler {
  event(e: ServerEvent): void;
  fail(error: Error): void;
}

/** Hears the events of one running response (by response_id). */
export interface StreamHandler extends ReplyHandler {}

const IGNORED_REPLY_GRACE_MS = 30_000;

type Requestable = Extract<ClientEvent, { type: keyof ReplyOf }>;

export class Connection {
  private readonly replies = new Map<string, ReplyHandler>();
  private readonly streams = new Map<string, StreamHandler>();
  private nextEventId = 1;
  private closedWith: ConnectionError | undefined;
  private readonly closedPromise: Promise<void>;
  /** Server events nothing waited for (for example an `error` whose event_id
   * was unreadable, or late events of a response that timed out). */
  onUnhandled: ((event: ServerEvent) => void) | undefined;

  private constructor(
    private readonly socket: WebSocketLike,
    readonly options: ResolvedOptions,
  ) {
    socket.addEventListener("message", (m) => this.receive(m.data));
    this.closedPromise = new Promise((resolve) => {
      socket.addEventListener("close", (e) => {
        this.shutDown(new ConnectionError(`connection closed (code ${e.code}${e.reason ? `: ${e.reason}` : ""})`,
          { closeCode: e.code }));
        resolve();
      });
    });
  }

  static async open(options: ResolvedOptions): Promise<Connection> {
    const socket = await openWebSocket(options.url, options.apiKey, options.connectTimeoutMs, options.webSocket);
    return new Connection(socket, options);
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Sends one event, giving it an event_id when it has none; returns the event_id. */
  send(event: ClientEvent): string {
    if (this.closedWith) throw this.closedWith;
    const eventId = event.event_id ?? `evt_${this.nextEventId++}`;
    this.socket.send(JSON.stringify({ ...event, event_id: eventId }));
    return eventId;
  }

  /** Sends an event that has a direct reply and resolves with that reply;
   * an `error` reply rejects with ProtocolError carrying its code. */
  request<E extends Requestable>(event: E, timeoutMs = this.options.timeoutMs): Promise<ReplyOf[E["type"]]> {
    return new Promise((resolve, reject) => {
      let eventId: string;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        this.replies.delete(eventId);
        if (timer) clearTimeout(timer);
      };
      const handler: ReplyHandler = {
        event: (e) => {
          done();
          if (e.type === "error") reject(ProtocolError.fromEvent(e));
          else resolve(e as ReplyOf[E["type"]]);
        },
        fail: (error) => {
          done();
          reject(error);
        },
      };
      try {
        eventId = this.send(event);
      } catch (error) {
        reject(error);
        return;
      }
      this.replies.set(eventId, handler);
      if (timeoutMs > 0) {
        timer = setTimeout(
          () => handler.fail(new TimeoutError(`${event.type}: no reply within ${timeoutMs} ms`)), timeoutMs);
      }
    });
  }

  /** Sends an event that has no direct reply (response.cancel) and drops an
   * `error` about it arriving within a grace period: for a cancel, not_found
   * only means the response ended first. */
  sendIgnoringReply(event: ClientEvent): void {
    const eventId = this.send(event);
    this.replies.set(eventId, { event: () => this.replies.delete(eventId), fail: () => {} });
    const timer = setTimeout(() => this.replies.delete(eventId), IGNORED_REPLY_GRACE_MS);
    (timer as { unref?: () => void }).unref?.();
  }

  /** Routes replies carrying `eventId` to `handler` until `forgetReply`. */
  expectReply(eventId: string, handler: ReplyHandler): void {
    this.replies.set(eventId, handler);
  }

  forgetReply(eventId: string): void {
    this.replies.delete(eventId);
  }

  /** Routes events carrying `responseId` to `handler` until `forgetStream`. */
  expectStream(responseId: string, handler: StreamHandler): void {
    this.streams.set(responseId, handler);
  }

  forgetStream(responseId: string): void {
    this.streams.delete(responseId);
  }

  /** Closes the connection; anything still waiting fails with ConnectionError. */
  async close(): Promise<void> {
    if (!this.closedWith) this.socket.close(1000);
    await this.closedPromise;
  }

  private receive(data: unknown): void {
    let event: ServerEvent;
    try {
      if (typeof data !== "string") throw new MnemoError("binary message");
      event = JSON.parse(data) as ServerEvent;
      if (typeof event !== "object" || event === null || typeof event.type !== "string") {
        throw new MnemoError("not an event object");
      }
    } catch (error) {
      // The daemon only sends JSON text; anything else is a broken peer.
      this.onUnhandled?.({ type: "error", code: "invalid_json", message: `unreadable server message: ${String(error)}` });
      return;
    }
    const responseId = "response_id" in event ? event.response_id : undefined;
    if (event.type !== "response.created" && responseId !== undefined) {
      const stream = this.streams.get(responseId);
      if (stream) return stream.event(event);
    }
    const eventId = "event_id" in event ? event.event_id : undefined;
    const reply = eventId !== undefined ? this.replies.get(eventId) : undefined;
    if (reply) return reply.event(event);
    this.onUnhandled?.(event);
  }

  private shutDown(error: ConnectionError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    const waiting = [...this.replies.values(), ...this.streams.values()];
    this.replies.clear();
    this.streams.clear();
    for (const handler of waiting) handler.fail(error);
  }
}
