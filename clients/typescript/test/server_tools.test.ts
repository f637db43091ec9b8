// Server-side tools: a mnemod started with `--tools FILE` holding one command
// tool (`shout`) runs the model's calls of it within the response (tool.start
// / tool.end), stores the results and goes on generating; the session's own
// tools still stop the response for the client. Plus the agent loop against a
// scripted socket, where the mix of daemon and client calls is exact.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  MnemoClient,
  ProtocolError,
  ToolRegistry,
  type ClientEvent,
  type JsonObject,
  type ResponseEvent,
  type ServerEvent,
  type ServerToolEndEvent,
  type ServerToolStartEvent,
  type WebSocketLike,
} from "mnemo-client";
import { skipReason, startDaemon, type Daemon } from "./mnemod.js";

const SHOUT_PARAMETERS: JsonObject = { type: "object", properties: { text: { type: "string" } }, required: ["text"] };
const SHOUT = {
  argv: ["/usr/bin/python3", "-c", "import sys, json; a = json.load(sys.stdin); print(a['text'].upper())"],
  description: "Upper-cases text",
  parameters: SHOUT_PARAMETERS,
};
const SAMPLING = { max_tokens: 128, temperature: 0 };

/** What `shout` answers (print's newline included). */
const shouted = (text: string) => `${text.toUpperCase()}\n`;

function lookupTools(): ToolRegistry {
  return new ToolRegistry().register("lookup",
    { description: "Looks a key up.", parameters: { type: "object", properties: { key: { type: "string" } }, required: ["key"] } },
    ({ key }) => `value of ${String(key)}`);
}

describe("server-side tools", { skip: skipReason }, () => {
  let daemon: Daemon;
  let client: MnemoClient;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "mnemo-tools-"));
    const file = join(dir, "tools.json");
    writeFileSync(file, JSON.stringify({ commands: { shout: SHOUT } }));
    daemon = await startDaemon("--tools", file);
    client = await MnemoClient.connect({ url: daemon.url });
  });
  after(async () => client?.close());

  async function sessionWith(text: string, tools?: ToolRegistry): Promise<string> {
    const sid = (await client.createSession({ sampling: SAMPLING, ...(tools ? { tools: tools.definitions() } : {}) })).id;
    await client.append(sid, { role: "user", content: text });
    return sid;
  }

  test("listTools reports the command", async () => {
    const tools = await client.listTools();
    assert.deepEqual(tools.map((t) => [t.name, t.kind, t.description]), [["shout", "command", "Upper-cases text"]]);
    assert.deepEqual(tools[0]!.parameters, SHOUT_PARAMETERS);
    assert.ok(tools[0]!.provider);
  });

  test("the daemon runs the tool, stores its result and goes on", async () => {
    const sid = await sessionWith("Shout 'hello'.");
    const stream = client.respond(sid, { tool_choice: "required", server_tools: true, max_tool_turns: 1 });
    const events: ResponseEvent[] = [];
    for await (const e of stream) events.push(e);
    const done = await stream.done();

    const starts = events.filter((e): e is ServerToolStartEvent => e.type === "tool.start");
    const ends = events.filter((e): e is ServerToolEndEvent => e.type === "tool.end");
    assert.ok(starts.length >= 1 && starts.length === ends.length, JSON.stringify(events));
    assert.equal(done.tool_turns, 1);
    const streamed = new Map(events.flatMap((e) => (e.type === "response.tool_call" ? [[e.tool_call.id, e.tool_call]] : [])));
    starts.forEach((start, i) => {
      const end = ends[i]!;
      assert.deepEqual([start.name, end.name, end.call_id], ["shout", "shout", start.call_id]);
      assert.equal(start.response_id, done.response_id);
      assert.equal(end.session_id, sid);
      assert.deepEqual(streamed.get(start.call_id)?.arguments, start.arguments); // streamed before it ran
      assert.ok(events.indexOf(start) < events.indexOf(end));
      assert.equal(end.status, "ok", JSON.stringify(end));
      assert.equal(end.error, undefined);
      assert.equal(typeof start.arguments.text, "string");
      assert.equal(end.output, shouted(start.arguments.text as string));
      assert.equal(end.output_bytes, Buffer.byteLength(end.output));
      assert.ok(end.duration_ms >= 0);
    });
    assert.deepEqual(stream.serverToolRuns.map((r) => [r.call_id, r.name, r.status, r.output]),
      ends.map((e) => [e.call_id, e.name, e.status, e.output]));
    assert.deepEqual(stream.serverToolRuns[0]!.arguments, starts[0]!.arguments);

    // Stored: the call, the daemon's tool message, then what the model said next.
    const { messages } = await client.getSession(sid);
    assert.deepEqual(messages.slice(0, 3).map((m) => m.role), ["user", "assistant", "tool"]);
    assert.equal(messages[1]!.tool_calls?.[0]?.id, starts[0]!.call_id);
    const stored = new Map(messages.filter((m) => m.role === "tool").map((m) => [m.tool_call_id, m.content]));
    for (const end of ends) assert.equal(stored.get(end.call_id), end.output);
    assert.equal(messages.at(-1)!.role, "assistant");
    assert.ok(done.usage.prompt_tokens > 0 && done.usage.completion_tokens > 0);
  });

  test("max_tool_turns bounds the rounds", async () => {
    const sid = await sessionWith("Shout everything.");
    const stream = client.respond(sid, { tool_choice: "required", server_tools: true, max_tool_turns: 2 });
    const done = await stream.done();
    assert.equal(done.tool_turns, 2);
    assert.equal(done.finish_reason, "tool_calls");
    const runs = stream.serverToolRuns;
    assert.ok(runs.length >= 2 && runs.every((r) => r.status === "ok"), JSON.stringify(runs));
    const { messages } = await client.getSession(sid);
    assert.equal(messages.filter((m) => m.role === "tool").length, runs.length);
  });

  test("server_tools can name the tools offered", async () => {
    const sid = await sessionWith("Shout 'hi'.");
    const stream = client.respond(sid, { tool_choice: "required", server_tools: ["shout"], max_tool_turns: 1 });
    assert.equal((await stream.done()).tool_turns, 1);
    assert.ok(stream.serverToolRuns.length >= 1 && stream.serverToolRuns.every((r) => r.name === "shout" && r.status === "ok"));
    await assert.rejects(client.respond(sid, { server_tools: ["nope"] }).done(),
      (e: unknown) => e instanceof ProtocolError && e.code === "invalid_request" && e.field === "server_tools");
  });

  test("a session tool still stops the response for the client", async () => {
    const sid = await sessionWith("Look up 'a'.", lookupTools());
    const stream = client.respond(sid, {
      tool_choice: { type: "function", function: { name: "lookup" } }, server_tools: true,
    });
    const done = await stream.done();
    assert.equal(done.finish_reason, "tool_calls");
    assert.deepEqual((await stream.toolCalls()).map((c) => c.name), ["lookup"]);
    assert.deepEqual(await stream.clientToolCalls(), await stream.toolCalls());
    assert.equal(done.tool_turns, 0);
    assert.deepEqual(stream.serverToolRuns, []);
    const { messages } = await client.getSession(sid);
    assert.deepEqual(messages.map((m) => m.role), ["user", "assistant"]);
  });

  test("run leaves the daemon's calls to the daemon", async () => {
    // Response 1 is forced to call shout every turn: the daemon runs round 1,
    // and the call of the turn after it (past max_tool_turns) is left to the
    // client, which has no shout. Response 2 is forced to call the session's
    // lookup, which the client runs.
    const tools = lookupTools();
    const sid = (await client.createSession({ sampling: SAMPLING, tools: tools.definitions() })).id;
    const result = await client.run(sid, "Shout 'hi', then look it up.", tools, {
      first_tool_choice: { type: "function", function: { name: "shout" } },
      tool_choice: { type: "function", function: { name: "lookup" } },
      max_turns: 2, server_tools: true, max_tool_turns: 1,
    });
    const [first, second] = result.turns;
    assert.deepEqual([first!.tool_turns, second!.tool_turns, result.tool_turns], [1, 0, 1]);
    const serverIds = new Set(first!.server_tool_runs.map((r) => r.call_id));
    assert.ok(serverIds.size > 0 && first!.server_tool_runs.every((r) => r.name === "shout" && r.status === "ok"));
    assert.deepEqual(second!.server_tool_runs, []);
    assert.deepEqual([...new Set(first!.tool_results.map((r) => `${r.name} ${r.status}`))], ["shout error"]);
    assert.deepEqual([...new Set(second!.tool_results.map((r) => `${r.name} ${r.status}`))], ["lookup ok"]);
    const clientIds = result.turns.flatMap((t) => t.tool_results.map((r) => r.call_id));
    assert.ok(clientIds.every((id) => !serverIds.has(id)));
    const { messages } = await client.getSession(sid);
    const answered = messages.filter((m) => m.role === "tool").map((m) => m.tool_call_id!).sort();
    assert.deepEqual(answered, [...serverIds, ...clientIds].sort()); // each call answered once
  });
});

describe("a running server-side tool", { skip: skipReason }, () => {
  test("cancel stops it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mnemo-tools-"));
    const file = join(dir, "nap.json");
    const nap = { argv: ["/usr/bin/python3", "-c", "import time; time.sleep(30)"], description: "Sleeps." };
    writeFileSync(file, JSON.stringify({ commands: { nap } }));
    const daemon = await startDaemon("--tools", file);
    const client = await MnemoClient.connect({ url: daemon.url });
    try {
      const sid = (await client.createSession({ sampling: SAMPLING })).id;
      await client.append(sid, { role: "user", content: "Sleep." });
      const started = Date.now();
      const stream = client.respond(sid, { tool_choice: { type: "function", function: { name: "nap" } }, server_tools: true });
      const events: ResponseEvent[] = [];
      for await (const e of stream) {
        events.push(e);
        if (e.type === "tool.start") void stream.cancel();
      }
      const done = await stream.done();
      assert.ok(Date.now() - started < 10_000, "not the tool's 30 s");
      assert.equal(done.finish_reason, "cancelled");
      const end = events.find((e): e is ServerToolEndEvent => e.type === "tool.end");
      assert.deepEqual([end?.name, end?.status, end?.error], ["nap", "error", "cancelled"]);
      assert.deepEqual(stream.serverToolRuns.map((r) => [r.name, r.status, r.error]), [["nap", "error", "cancelled"]]);
      await client.append(sid, { role: "user", content: "again" }); // the session is free
    } finally {
      await client.close();
    }
  });
});

describe("server-side tools without a tools file", { skip: skipReason }, () => {
  test("server_tools is refused and max_tool_turns is checked", async () => {
    const daemon = await startDaemon();
    const client = await MnemoClient.connect({ url: daemon.url });
    try {
      assert.deepEqual(await client.listTools(), []);
      const sid = (await client.createSession({ sampling: SAMPLING })).id;
      await client.append(sid, { role: "user", content: "hi" });
      const refused = (code: string, field: string) => (e: unknown) =>
        e instanceof ProtocolError && e.code === code && e.field === field;
      await assert.rejects(client.respond(sid, { server_tools: true }).done(), refused("invalid_request", "server_tools"));
      await assert.rejects(client.respond(sid, { max_tool_turns: 65 }).done(), refused("invalid_field", "max_tool_turns"));
    } finally {
      await client.close();
    }
  });
});

/** A socket that answers each client event with what `script` returns. */
function scriptedSocket(sent: ClientEvent[], script: (e: ClientEvent & { event_id: string }) => object[]): WebSocketLike {
  const listeners: Record<string, ((e: never) => void)[]> = {};
  const emit = (type: string, e: object) => listeners[type]?.forEach((l) => l(e as never));
  return {
    readyState: 1,
    send: (data: string) => {
      const event = JSON.parse(data) as ClientEvent & { event_id: string };
      sent.push(event);
      setImmediate(() => {
        for (const reply of script(event)) emit("message", { data: JSON.stringify(reply) });
      });
    },
    close: () => emit("close", { code: 1000, reason: "" }),
    addEventListener: (type: string, l: (e: never) => void) => void (listeners[type] ??= []).push(l),
  };
}

describe("run with server_tools (scripted daemon)", () => {
  test("only the calls the daemon left are run by the client", async () => {
    const shoutCall = { id: "call_s", name: "shout", arguments: { text: "hi" } };
    const lookupCall = { id: "call_l", name: "lookup", arguments: { key: "hi" } };
    let responses = 0;
    const script = (e: ClientEvent & { event_id: string }): object[] => {
      const id = { event_id: e.event_id };
      switch (e.type) {
        case "program.begin":
          return [{ type: "program.begun", ...id, program_id: "prog_1", session_id: "sess_1", started_at: 1 }];
        case "message.append":
          return [{ type: "message.appended", ...id, session_id: "sess_1", indices: [0], message_count: 1 }];
        case "tool.start":
          return [{ type: "tool.started", ...id, call_id: e.call_id, started_at: 2 }];
        case "tool.end":
          return [{ type: "tool.ended", ...id, call_id: e.call_id, status: "ok", duration_ms: 1 }];
        case "program.end":
          return [{ type: "program.ended", ...id, program_id: "prog_1", duration_ms: 9 }];
        case "response.create": {
          const r = { response_id: `resp_${++responses}`, session_id: "sess_1" };
          const usage = { prompt_tokens: 5, cached_tokens: 0, completion_tokens: 1 };
          if (responses === 2) {
            return [{ type: "response.created", ...id, ...r },
              { type: "response.done", ...id, ...r, finish_reason: "stop", tool_turns: 0, usage,
                message: { role: "assistant", content: "done", created_at: 3 } }];
          }
          return [{ type: "response.created", ...id, ...r },
            { type: "response.tool_call", ...r, tool_call: shoutCall },
            { type: "response.tool_call", ...r, tool_call: lookupCall },
            { type: "tool.start", ...r, call_id: "call_s", name: "shout", arguments: shoutCall.arguments, program_id: "prog_1" },
            { type: "tool.end", ...r, call_id: "call_s", name: "shout", status: "ok", duration_ms: 2.5, output_bytes: 3,
              output: "HI\n" },
            { type: "response.done", ...id, ...r, finish_reason: "tool_calls", tool_turns: 1, usage,
              message: { role: "assistant", content: "", tool_calls: [shoutCall, lookupCall], created_at: 3 } }];
        }
        default:
          return [];
      }
    };
    const sent: ClientEvent[] = [];
    const client = await MnemoClient.connect({ url: "ws://127.0.0.1:9/v1/ws", webSocket: () => scriptedSocket(sent, script) });
    const seen: ServerEvent["type"][] = [];
    const result = await client.run("sess_1", "go", lookupTools(), {
      server_tools: true, max_tool_turns: 3, onEvent: (e) => seen.push(e.type),
    });
    await client.close();

    const creates = sent.filter((e) => e.type === "response.create");
    assert.deepEqual(creates.map((e) => [e.server_tools, e.max_tool_turns, e.program_id]), [[true, 3, "prog_1"], [true, 3, "prog_1"]]);
    assert.deepEqual(sent.filter((e) => e.type === "tool.start").map((e) => e.call_id), ["call_l"]);
    const appends = sent.filter((e) => e.type === "message.append");
    assert.deepEqual(appends[1]!.messages, [{ role: "tool", tool_call_id: "call_l", name: "lookup", content: "value of hi" }]);
    const [first, second] = result.turns;
    assert.deepEqual(first!.tool_results.map((r) => r.name), ["lookup"]);
    assert.deepEqual(first!.server_tool_runs, [{
      call_id: "call_s", name: "shout", arguments: { text: "hi" }, status: "ok", duration_ms: 2.5, output: "HI\n", output_bytes: 3,
    }]);
    assert.equal(first!.tool_turns, 1);
    assert.equal(second!.tool_turns, 0);
    assert.equal(result.tool_turns, 1);
    assert.equal(result.finish_reason, "stop");
    assert.ok(seen.includes("tool.start") && seen.includes("tool.end"));
  });
});
