import type { WebSocketFactory } from "./transport.js";

export const DEFAULT_URL = "ws://127.0.0.1:8420/v1/ws";

export interface ClientOptions {
  /** ws://HOST:PORT/v1/ws; an http(s):// URL or one without a path is mapped
   * to the daemon's /v1/ws. Node default: $MNEMO_URL, else ws://127.0.0.1:8420/v1/ws. */
  url?: string;
  /** Sent as `Authorization: Bearer KEY`. Node default: $MNEMO_API_KEY. */
  apiKey?: string;
  /** How long to wait for a reply, and between two events of a streamed
   * response, before failing with TimeoutError. Default 60 s; 0 waits forever. */
  timeoutMs?: number;
  /** How long opening the connection may take. Default 10 s. */
  connectTimeoutMs?: number;
  /** Overrides how the WebSocket is made (tests, custom transports). */
  webSocket?: WebSocketFactory;
}

export interface ResolvedOptions {
  url: string;
  apiKey: string | undefined;
  timeoutMs: number;
  connectTimeoutMs: number;
  webSocket: WebSocketFactory | undefined;
}

function env(name: string): string | undefined {
  // Browsers have no process; an empty variable counts as unset, like mnemod's.
  const value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
  return value ? value : undefined;
}

export function normalizeUrl(raw: string): string {
  const url = new URL(raw);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  else if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new TypeError(`url: expected ws://, wss://, http:// or https://, got ${JSON.stringify(raw)}`);
  }
  // A bare daemon address, or the OpenAI-style base URL, means the session endpoint.
  if (url.pathname === "/" || url.pathname === "" || url.pathname.replace(/\/$/, "") === "/v1") {
    url.pathname = "/v1/ws";
  }
  return url.toString();
}

export function resolveOptions(options: ClientOptions = {}): ResolvedOptions {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  if (!(timeoutMs >= 0) || !(connectTimeoutMs >= 0)) {
    throw new RangeError("timeoutMs and connectTimeoutMs must be numbers >= 0");
  }
  return {
    url: normalizeUrl(options.url ?? env("MNEMO_URL") ?? DEFAULT_URL),
    apiKey: options.apiKey ?? env("MNEMO_API_KEY"),
    timeoutMs,
    connectTimeoutMs,
    webSocket: options.webSocket,
  };
}
