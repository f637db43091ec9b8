// The tool helper: registration, and a full agent run (model -> tool -> model)
// against a real mnemod with tool_choice "required", checked against what
// the daemon stored.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { MnemoClient, ProtocolError, ToolRegistry, type JsonObject, type TurnReport } from "mnemo-client";
import { skipReason, startDaemon, type Daemon } from "./mnemod.js";

const CALC_SCHEMA: JsonObject = {
  type: "object",
  properties: { expr: { type: "string" }, digits: { type: "integer" } },
  required: ["expr"],
};

describe("ToolRegistry", () => {
  test("definitions follow the protocol's Tool shape", () => {
    const box = new ToolRegistry()
      .register("calc", { description: "Evaluates arithmetic.", parameters: CALC_SCHEMA }, () => 0)
      .register("now", {}, () => "noon");
    assert.deepEqual(box.definitions(), [
      { type: "function", function: { name: "calc", description: "Evaluates arithmetic.", parameters: CALC_SCHEMA } },
      { type: "function", function: { name: "now", parameters: { type: "object", properties: {} } } },
    ]);
    assert.throws(() => box.register("bad name", {}, () => 0), TypeError);
  });

  test("results are text; throws and unknown tools become errors", async () => {
    const box = new ToolRegistry()
      .register("obj", {}, async (args) => ({ got: args }))
      .register("boom", {}, () => {
        throw new Error("kaput");
      });
    const ctx = { session_id: "s", program_id: "p", signal: undefined };
    const call = (name: string) => ({ id: "c", name, arguments: { a: 1 } });
    assert.deepEqual(await box.call(call("obj"), { ...ctx, call: call("obj") }), { status: "ok", result: '{"got":{"a":1}}' });
    assert.deepEqual(await box.call(call("boom"), { ...ctx, call: call("boom") }), { status: "error", result: "error: kaput" });
    assert.equal((await box.call(call("nope"), { ...ctx, call: call("nope") })).status, "error");
  });
});

describe("client.run (the agent loop)", { skip: skipReason }, () => {
  let daemon: Daemon;
  let client: MnemoClient;
  before(async () => {
    daemon = await startDaemon();
    client = await MnemoClient.connect({ url: daemon.url });
  });
  after(async () => client?.close());

  test("model -> tool -> model with tool_choice required", async () => {
    const seen: JsonObject[] = [];
    const box = new ToolRegistry().register("calc", { description: "Evaluates arithmetic.", parameters: CALC_SCHEMA },
      (args, ctx) => {
        seen.push(args);
        assert.equal(ctx.call.arguments, args);
        return { value: 4 };
      });
    const sid = (await client.createSession({ system: "Use the tools.", tools: box.definitions() })).id;
    const reports: TurnReport[] = [];
    const types = new Set<string>();
    const result = await client.run(sid, "What is 2+2?", box, {
      first_tool_choice: "required",
      // "auto" keeps the tools in the prompt, so turn 2 reuses turn 1's KV
      // (with "none" mnemod renders the prompt without them).
      tool_choice: "auto",
      max_turns: 4,
      sampling: { max_tokens: 300, temperature: 0.7, seed: 7 },
      program_metadata: { test: "run" },
      onTurn: (r) => reports.push(r),
      onEvent: (e) => types.add(e.type),
    });

    assert.deepEqual(reports, result.turns);
    const turns = result.turns;
    assert.ok(turns.length >= 2 && turns.length <= 4);
    // Every turn but the last called tools; the last answered in text.
    assert.ok(turns.slice(0, -1).every((t) => t.finish_reason === "tool_calls" && t.tool_calls.length > 0));
    const last = turns.at(-1)!;
    assert.ok(last.finish_reason === "stop" || last.finish_reason === "length", last.finish_reason);
    assert.equal(last.tool_calls.length, 0);
    assert.equal(result.finish_reason, last.finish_reason);

    const first = turns[0]!;
    const call = first.tool_calls[0]!;
    assert.equal(call.name, "calc");
    assert.equal(typeof call.arguments.expr, "string");
    assert.ok(Object.keys(call.arguments).every((k) => k === "expr" || k === "digits"));
    const allCalls = turns.flatMap((t) => t.tool_calls);
    assert.deepEqual(seen, allCalls.map((c) => c.arguments));
    assert.deepEqual(first.tool_results.map((r) => [r.call_id, r.status, r.result]),
      first.tool_calls.map((c) => [c.id, "ok", '{"value":4}']));
    assert.ok(first.tool_results.every((r) => r.duration_ms >= 0));
    assert.ok(types.has("response.created") && types.has("response.tool_call") && types.has("response.done"));

    // Per-turn usage: the second turn reuses the first turn's KV.
    assert.ok(first.usage.prompt_tokens > 0 && first.usage.completion_tokens > 0);
    assert.ok(turns[1]!.usage.cached_tokens >= 16, JSON.stringify(turns[1]!.usage));
    const total = (k: "prompt_tokens" | "cached_tokens" | "completion_tokens") =>
      turns.reduce((n, t) => n + t.usage[k], 0);
    assert.deepEqual(result.usage, {
      prompt_tokens: total("prompt_tokens"), cached_tokens: total("cached_tokens"), completion_tokens: total("completion_tokens"),
    });

    // The daemon stored the loop: user, (assistant call, tool results)*, answer.
    const { messages } = await client.getSession(sid);
    const expected = ["user", ...turns.slice(0, -1).flatMap((t) => ["assistant", ...t.tool_calls.map(() => "tool")]), "assistant"];
    assert.deepEqual(messages.map((m) => m.role), expected);
    assert.deepEqual(messages[1]!.tool_calls, first.tool_calls);
    assert.equal(messages[2]!.tool_call_id, call.id);
    assert.equal(messages[2]!.name, "calc");
    assert.equal(messages[2]!.content, '{"value":4}');
    assert.deepEqual(messages.at(-1), result.message);
    // The program was ended.
    await assert.rejects(client.endProgram(result.program_id), (e: unknown) => e instanceof ProtocolError && e.code === "not_found");
  });

  test("max_turns stops the run with its tools answered", async () => {
    let calls = 0;
    const box = new ToolRegistry().register("calc", { parameters: CALC_SCHEMA }, () => String(++calls));
    const sid = (await client.createSession({ tools: box.definitions(), sampling: { max_tokens: 200 } })).id;
    const result = await client.run(sid, "loop", box, { tool_choice: "required", max_turns: 2 });
    assert.deepEqual(result.turns.map((t) => t.finish_reason), ["tool_calls", "tool_calls"]);
    assert.equal(result.finish_reason, "tool_calls");
    assert.equal(calls, 2);
    const { messages } = await client.getSession(sid);
    assert.deepEqual(messages.map((m) => m.role), ["user", "assistant", "tool", "assistant", "tool"]);
    assert.deepEqual(messages.filter((m) => m.role === "tool").map((m) => m.content), ["1", "2"]);
  });

  test("a failing tool is reported to the daemon and the model as an error", async () => {
    const box = new ToolRegistry().register("calc", { parameters: CALC_SCHEMA }, () => {
      throw new Error("division by zero");
    });
    const sid = (await client.createSession({ tools: box.definitions(), sampling: { max_tokens: 200 } })).id;
    const result = await client.run(sid, "1/0", box, { first_tool_choice: "required", tool_choice: "none" });
    const [first] = result.turns;
    assert.equal(first!.tool_results[0]!.status, "error");
    assert.equal(first!.tool_results[0]!.result, "error: division by zero");
    const tool = (await client.getSession(sid)).messages.find((m) => m.role === "tool");
    assert.equal(tool?.content, "error: division by zero");
  });

  test("abort stops the run and ends its program", async () => {
    const box = new ToolRegistry().register("calc", { parameters: CALC_SCHEMA }, () => "1");
    const sid = (await client.createSession({ tools: box.definitions(), sampling: { max_tokens: 100_000 } })).id;
    const controller = new AbortController();
    const run = client.run(sid, "talk", box, {
      tool_choice: "none", signal: controller.signal,
      onEvent: (e) => {
        if (e.type === "response.delta") controller.abort();
      },
    });
    await assert.rejects(run, { name: "AbortError" });
    const { messages } = await client.getSession(sid);
    assert.deepEqual(messages.map((m) => m.role), ["user"]);
    // The session is free again.
    await client.append(sid, { role: "user", content: "again" });
  });
});
