// Opens the WebSocket: the runtime's global WebSocket (browsers, Deno, Node
// 22+) when there is one, else the `ws` package, loaded only then so browser
// bundles never need it. In Node an API key forces `ws`, because the standard
// WebSocket API cannot send an Authorization header.

import { ConnectionError, TimeoutError } from "./errors.js";

/** The subset of the standard WebSocket interface the client uses; both the
 * browser's WebSocket and the `ws` package's implement it. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (event: unknown) => void): void;
}

export type WebSocketFactory = (url: string, headers: Record<string, string>) => WebSocketLike | Promise<WebSocketLike>;

type WebSocketCtor = new (url: string) => WebSocketLike;

const OPEN = 1;

function isNode(): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";
}

async function wsPackageSocket(url: string, headers: Record<string, string>, onStatus: (status: number) => void) {
  const { WebSocket } = await import("ws");
  const socket = new WebSocket(url, { headers });
  // With this listener ws hands the refused upgrade to us instead of a
  // generic error, so a 401 becomes a status the caller can check.
  socket.on("unexpected-response", (request, response) => {
    onStatus(response.statusCode ?? 0);
    request.destroy();
  });
  return socket as unknown as WebSocketLike;
}

export const defaultWebSocketFactory = (onStatus: (status: number) => void): WebSocketFactory =>
  async (url, headers) => {
    const native = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    const needsHeaders = Object.keys(headers).length > 0;
    if (native && !(needsHeaders && isNode())) {
      if (needsHeaders) {
        throw new ConnectionError(
          "this runtime's WebSocket cannot send the Authorization header that an API key needs; " +
            "connect through a proxy that adds it, or run mnemod without --api-key");
      }
      return new native(url);
    }
    return wsPackageSocket(url, headers, onStatus);
  };

/** Resolves once the socket is open; rejects with ConnectionError (refused,
 * unreachable) or TimeoutError. */
export async function openWebSocket(
  url: string,
  apiKey: string | undefined,
  connectTimeoutMs: number,
  factory: WebSocketFactory | undefined,
): Promise<WebSocketLike> {
  let status: number | undefined;
  let onRefused: (() => void) | undefined;
  const headers: Record<string, string> = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  const make = factory ?? defaultWebSocketFactory((s) => {
    status = s;
    onRefused?.();
  });
  const socket = await make(url, headers);
  if (socket.readyState === OPEN) return socket;
  return new Promise<WebSocketLike>((resolve, reject) => {
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (error) {
        reject(error);
        try {
          socket.close();
        } catch {
          // Closing a socket that never opened may throw; it is gone either way.
        }
      } else {
        resolve(socket);
      }
    };
    const timer = connectTimeoutMs > 0
      ? setTimeout(() => settle(new TimeoutError(`connecting to ${url}: no answer within ${connectTimeoutMs} ms`)), connectTimeoutMs)
      : undefined;
    const refused = (closeCode?: number, cause?: unknown) => {
      const why = status === 401
        ? "HTTP 401: the daemon requires an API key (Authorization: Bearer), and none or a wrong one was sent"
        : status !== undefined ? `HTTP ${status}` : "connection failed";
      settle(new ConnectionError(`connecting to ${url}: ${why}`, { status, closeCode, cause }));
    };
    onRefused = () => refused();
    socket.addEventListener("open", () => settle());
    socket.addEventListener("error", (event) => refused(undefined, (event as { error?: unknown })?.error ?? event));
    socket.addEventListener("close", (event) => refused(event.code));
  });
}
