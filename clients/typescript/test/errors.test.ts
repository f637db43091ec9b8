// Typed errors: the daemon's error codes and fields for bad requests, the
// connection closing under a waiting call, and timeouts (against local fakes,
// so they do not depend on the daemon's speed).
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";

import {
  ConnectionError,
  MnemoClient,
  ProtocolError,
  TimeoutError,
  type ClientEvent,
  type WebSocketLike,
} from "mnemo-client";
import { skipReason, startDaemon, type Daemon } from "./mnemod.js";

function isProtocolError(code: string, field?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof ProtocolError, String(e));
    assert.equal(e.code, code);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  };
}

describe("bad requests", { skip: skipReason }, () => {
  let daemon: Daemon;
  let client: MnemoClient;
  before(async () => {
    daemon = await startDaemon();
    client = await MnemoClient.connect({ url: daemon.url });
  });
  after(async () => client?.close());

  test("unknown ids are not_found", async () => {
    await assert.rejects(client.resumeSession("sess_nope"), isProtocolError("not_found"));
    await assert.rejects(client.deleteSession("sess_nope"), isProtocolError("not_found"));
    await assert.rejects(client.append("sess_nope", { role: "user", content: "x" }), isProtocolError("not_found"));
    await assert.rejects(client.respond("sess_nope").done(), isProtocolError("not_found"));
    await assert.rejects(client.endProgram("prog_nope"), isProtocolError("not_found"));
    await assert.rejects(client.endTool({ call_id: "call_nope" }), isProtocolError("not_found"));
  });

  test("invalid fields name the field", async () => {
    const hot = { temperature: "hot" } as unknown as { temperature: number };
    await assert.rejects(client.createSession({ sampling: hot }), isProtocolError("invalid_field", "sampling.temperature"));
    const sid = (await client.createSession()).id;
    await assert.rejects(client.append(sid, { role: "tool", content: "18" }),
      isProtocolError("missing_field", "message.tool_call_id"));
    await assert.rejects(client.listSessions({ limit: 0 }), isProtocolError("invalid_field", "limit"));
    await assert.rejects(client.respond(sid, { sampling: { top_p: 0 } }).done(),
      isProtocolError("invalid_field", "sampling.top_p"));
  });

  test("tool_choice the session cannot honour is invalid_request", async () => {
    const sid = (await client.createSession()).id;
    await client.append(sid, { role: "user", content: "hi" });
    const stream = client.respond(sid, { tool_choice: "required" });
    await assert.rejects(stream.created(), isProtocolError("invalid_request"));
    await assert.rejects(stream.done(), isProtocolError("invalid_request"));
  });

  test("conflicting ids are conflict, and the connection keeps working", async () => {
    const p = await client.beginProgram();
    await assert.rejects(client.beginProgram({ program_id: p.program_id }), isProtocolError("conflict"));
    await client.startTool({ call_id: "c1", name: "calc", program_id: p.program_id });
    await assert.rejects(client.startTool({ call_id: "c1", name: "calc" }), isProtocolError("conflict"));
    const ended = await client.endTool({ call_id: "c1", status: "error", result: "boom" });
    assert.equal(ended.status, "error");
    await client.endProgram(p.program_id);
    await client.ping();
  });

  test("a daemon going away fails what waits with ConnectionError", async () => {
    const sid = (await client.createSession({ sampling: { max_tokens: 100_000 } })).id;
    await client.append(sid, { role: "user", content: "long" });
    const stream = client.respond(sid);
    await stream.created();
    await daemon.stop();
    // SIGTERM ends the response with "shutdown", then closes with 1001.
    assert.equal((await stream.done()).finish_reason, "shutdown");
    await assert.rejects(client.ping(), (e: unknown) => e instanceof ConnectionError && e.closeCode === 1001);
    await assert.rejects(client.respond(sid).done(), ConnectionError);
  });
});

/** A socket that opens and swallows everything: no reply ever comes. */
function silentSocket(sent: ClientEvent[]): WebSocketLike {
  const listeners: Record<string, ((e: never) => void)[]> = {};
  return {
    readyState: 1,
    send: (data: string) => void sent.push(JSON.parse(data) as ClientEvent),
    close: () => listeners.close?.forEach((l) => l({ code: 1000, reason: "" } as never)),
    addEventListener: (type: string, l: (e: never) => void) => void (listeners[type] ??= []).push(l),
  };
}

describe("timeouts", () => {
  test("a request with no reply times out", async () => {
    const sent: ClientEvent[] = [];
    const client = await MnemoClient.connect({ url: "ws://127.0.0.1:9/v1/ws", timeoutMs: 50, webSocket: () => silentSocket(sent) });
    await assert.rejects(client.ping(), TimeoutError);
    assert.equal(sent[0]?.type, "ping");
    await client.close();
  });

  test("a response with no events times out", async () => {
    const sent: ClientEvent[] = [];
    const client = await MnemoClient.connect({ url: "ws://127.0.0.1:9/v1/ws", webSocket: () => silentSocket(sent) });
    const stream = client.respond("sess_x", {}, { timeoutMs: 50 });
    await assert.rejects(stream.done(), TimeoutError);
    assert.deepEqual(sent.map((e) => e.type), ["response.create"]);
    await client.close();
  });

  let server: Server;
  let port = 0;
  const accepted: Socket[] = [];
  before(async () => {
    // Accepts TCP but never answers the WebSocket upgrade.
    server = createServer((socket) => void accepted.push(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    for (const socket of accepted) socket.destroy();
    server.close();
  });

  test("connecting to a server that never upgrades times out", async () => {
    await assert.rejects(MnemoClient.connect({ url: `ws://127.0.0.1:${port}/v1/ws`, connectTimeoutMs: 200 }), TimeoutError);
  });

  test("nothing listening is a ConnectionError", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const freePort = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(MnemoClient.connect({ url: `ws://127.0.0.1:${freePort}/v1/ws` }), ConnectionError);
  });
});
