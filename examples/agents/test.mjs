// The OpenAI Agents SDK (@openai/agents), unmodified, against a real mnemod
// (MNEMOD: absolute path of the binary; skipped without it): a function-tool
// round trip with the SDK's default Responses model over HTTP, with its
// WebSocket Responses model, and with its chat-completions model; and an
// outputType agent whose final output parses into its schema. The built-in
// model is random-weight, so the tests assert shapes and the tool call, not
// the text.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";

import {
  Agent, OpenAIChatCompletionsModel, OpenAIProvider, OpenAIResponsesModel, OpenAIResponsesWSModel, run,
  setDefaultOpenAIClient, setTracingDisabled, tool,
} from "@openai/agents";
import OpenAI from "openai";
import { WebSocket } from "ws";
import { z } from "zod";

// The SDK's WebSocket model opens its socket with the global WebSocket (Node
// 22 has one, taking {headers}); Node 20 lacks it: lend it the ws package's.
globalThis.WebSocket ??= WebSocket;

const MNEMOD = process.env.MNEMOD ?? "";
const skip = !MNEMOD ? "MNEMOD is not set to the absolute path of a built mnemod binary"
  : !existsSync(MNEMOD) ? `MNEMOD=${MNEMOD} does not exist` : false;
const dirs = [];
const daemons = [];

/** Starts mnemod on a fresh data dir and an ephemeral port; returns its /v1 URL. */
async function startDaemon(...extra) {
  const dir = mkdtempSync(join(tmpdir(), "mnemo-agents-"));
  dirs.push(dir);
  const proc = spawn(MNEMOD, ["--port", "0", "--data-dir", dir, "--threads", "1", "--kv-cache-bytes", "64M", ...extra],
    { stdio: ["ignore", "pipe", "ignore"] });
  daemons.push(proc);
  const lines = createInterface({ input: proc.stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("mnemod did not start in 60 s")), 60_000);
    proc.once("exit", (code) => reject(new Error(`mnemod exited with ${code}`)));
    lines.on("line", (line) => {
      const m = /^mnemod listening on (http:\/\/\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(`${m[1]}/v1`);
      }
    });
  });
}

after(async () => {
  await Promise.all(daemons.filter((p) => p.exitCode === null).map((p) => {
    const exited = new Promise((resolve) => p.once("exit", resolve));
    p.kill("SIGTERM");
    return exited;
  }));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

// No network here: no trace export to OpenAI.
setTracingDisabled(true);

/** Every HTTP request the SDK makes through the OpenAI client: method, path, JSON body. */
const sent = [];
async function recordingFetch(url, init = {}) {
  const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
  sent.push({ method: init.method ?? "GET", path: new URL(url).pathname, body });
  return fetch(url, init);
}

/**
 * An agent with one function tool (zod parameters) that records its calls.
 * The first turn must call it (toolChoice required; the SDK resets the
 * choice to auto after a tool call). The random-weight model never ends an
 * answer on its own, and the SDK fails a response that stops at
 * max_output_tokens ("incomplete"), so the second turn answers under an
 * outputType (a short JSON object, which the grammar closes) with the tool
 * withdrawn (isEnabled), where a real model would just stop.
 */
function weatherAgent(model) {
  const calls = [];
  const getWeather = tool({
    name: "get_weather",
    description: "Current weather for a city.",
    parameters: z.object({ city: z.string().max(12) }),
    isEnabled: () => calls.length === 0,
    execute: async (args) => {
      calls.push(args);
      return `It is sunny in ${args.city}.`;
    },
  });
  const agent = new Agent({
    name: "weather",
    instructions: "Answer with the weather tool.",
    model,
    tools: [getWeather],
    outputType: z.object({ answer: z.string().max(24) }),
    modelSettings: { toolChoice: "required", maxTokens: 200, temperature: 0 },
  });
  return { agent, calls };
}

const QUESTION = "What is the weather in Paris?";

/** What a tool round trip must show, whatever the transport. */
function assertToolRoundTrip(calls, result) {
  // The tool ran once, with arguments valid under its schema.
  assert.equal(calls.length, 1, `tool calls: ${JSON.stringify(calls)}`);
  assert.deepEqual(Object.keys(calls[0]), ["city"]);
  assert.equal(typeof calls[0].city, "string");
  assert.ok(calls[0].city.length <= 12);
  // Call, output, answer: in that order, joined by the call id.
  const types = result.newItems.map((i) => i.type);
  assert.deepEqual(types, ["tool_call_item", "tool_call_output_item", "message_output_item"]);
  const [callItem, outputItem] = result.newItems;
  assert.equal(callItem.rawItem.type, "function_call");
  assert.equal(callItem.rawItem.name, "get_weather");
  assert.ok(typeof callItem.rawItem.callId === "string" && callItem.rawItem.callId.length > 0);
  assert.equal(typeof callItem.rawItem.arguments, "string");
  assert.deepEqual(JSON.parse(callItem.rawItem.arguments), calls[0]);
  assert.equal(outputItem.rawItem.type, "function_call_result");
  assert.equal(outputItem.rawItem.callId, callItem.rawItem.callId);
  assert.equal(outputItem.output, `It is sunny in ${calls[0].city}.`);
  // The final output parsed into the outputType.
  assert.deepEqual(Object.keys(result.finalOutput), ["answer"]);
  assert.equal(typeof result.finalOutput.answer, "string");
  // Two model calls, each with its usage.
  assert.equal(result.rawResponses.length, 2);
  for (const { usage } of result.rawResponses) {
    assert.ok(usage.inputTokens > 0 && usage.outputTokens > 0, JSON.stringify(usage));
  }
}

/** The two Responses requests of a round trip: what the SDK sent (HTTP or WebSocket alike). */
function assertResponsesRequests(requests) {
  assert.equal(requests.length, 2);
  const [first, second] = requests;
  assert.equal(first.tool_choice, "required");
  assert.equal(first.tools[0].type, "function");
  assert.equal(first.tools[0].name, "get_weather");
  assert.equal(first.text.format.type, "json_schema");
  // The second turn carries the call and its output back as input items.
  const kinds = second.input.map((i) => i.type ?? i.role);
  assert.deepEqual(kinds, ["user", "function_call", "function_call_output"]);
  assert.equal(second.input[2].call_id, second.input[1].call_id);
}

describe("OpenAI Agents SDK against mnemod", { skip }, () => {
  let client;
  let model;
  before(async () => {
    const baseURL = await startDaemon();
    client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 30_000, fetch: recordingFetch });
    model = (await client.models.list()).data[0].id;
    // The SDK's default provider (the Responses API over HTTP) now talks to mnemod.
    setDefaultOpenAIClient(client);
  });

  test("default Responses model (HTTP): a function tool round trip", { timeout: 30_000 }, async () => {
    assert.ok(await new OpenAIProvider().getModel(model) instanceof OpenAIResponsesModel);
    const { agent, calls } = weatherAgent(model);
    sent.length = 0;
    const result = await run(agent, QUESTION, { maxTurns: 3 });
    assertToolRoundTrip(calls, result);
    const posts = sent.filter((r) => r.method === "POST");
    assert.deepEqual(posts.map((r) => r.path), ["/v1/responses", "/v1/responses"]);
    assertResponsesRequests(posts.map((r) => r.body));
    // Stored: the SDK's last response id is retrievable from mnemod.
    assert.match(result.lastResponseId, /^resp_/);
    const stored = await client.responses.retrieve(result.lastResponseId);
    assert.equal(stored.status, "completed");
    assert.deepEqual(JSON.parse(stored.output_text), result.finalOutput);
  });

  test("default Responses model (HTTP), streamed run: events and the same round trip", { timeout: 30_000 }, async () => {
    const { agent, calls } = weatherAgent(model);
    const stream = await run(agent, QUESTION, { maxTurns: 3, stream: true });
    const events = [];
    for await (const e of stream) {
      if (e.type === "raw_model_stream_event" && e.data.type === "model") events.push(e.data.event.type);
    }
    await stream.completed;
    assert.equal(stream.error ?? null, null);
    assertToolRoundTrip(calls, stream);
    assert.equal(events.filter((t) => t === "response.completed").length, 2);
    assert.ok(events.includes("response.function_call_arguments.delta"));
    assert.ok(events.includes("response.output_text.delta"));
  });

  test("WebSocket Responses model: a function tool round trip on one socket", { timeout: 30_000 }, async () => {
    // Count the sockets the SDK opens and keep the frames it sends.
    const Base = globalThis.WebSocket;
    const sockets = [];
    globalThis.WebSocket = class extends Base {
      constructor(...args) {
        super(...args);
        sockets.push({ url: String(args[0]), frames: [] });
      }
      send(data) {
        sockets.at(-1).frames.push(JSON.parse(data));
        super.send(data);
      }
    };
    const provider = new OpenAIProvider({ openAIClient: client, useResponsesWebSocket: true });
    try {
      const wsModel = await provider.getModel(model);
      assert.ok(wsModel instanceof OpenAIResponsesWSModel);
      const { agent, calls } = weatherAgent(wsModel);
      sent.length = 0;
      const result = await run(agent, QUESTION, { maxTurns: 3 });
      assertToolRoundTrip(calls, result);
      // Nothing went over HTTP: both turns were response.create messages on one socket.
      assert.deepEqual(sent, []);
      assert.equal(sockets.length, 1);
      assert.match(sockets[0].url, /^ws:\/\/127\.0\.0\.1:\d+\/v1\/responses$/);
      assert.deepEqual(sockets[0].frames.map((f) => f.type), ["response.create", "response.create"]);
      assertResponsesRequests(sockets[0].frames);
      assert.match(result.lastResponseId, /^resp_/);
      const stored = await client.responses.retrieve(result.lastResponseId);
      assert.equal(stored.status, "completed");
      // The second turn's prompt came from the first one's cached KV.
      assert.ok(stored.usage.input_tokens_details.cached_tokens > 0, JSON.stringify(stored.usage));
    } finally {
      await provider.close();
      globalThis.WebSocket = Base;
    }
  });

  test("chat-completions model: a function tool round trip", { timeout: 30_000 }, async () => {
    const { agent, calls } = weatherAgent(new OpenAIChatCompletionsModel(client, model));
    sent.length = 0;
    const result = await run(agent, QUESTION, { maxTurns: 3 });
    assertToolRoundTrip(calls, result);
    const posts = sent.filter((r) => r.method === "POST");
    assert.deepEqual(posts.map((r) => r.path), ["/v1/chat/completions", "/v1/chat/completions"]);
    const [first, second] = posts.map((r) => r.body);
    assert.equal(first.tool_choice, "required");
    assert.equal(first.response_format.type, "json_schema");
    assert.deepEqual(second.messages.map((m) => m.role), ["system", "user", "assistant", "tool"]);
    assert.equal(second.messages[3].tool_call_id, second.messages[2].tool_calls[0].id);
  });

  test("structured output: outputType parses into its schema (Responses text.format)", { timeout: 30_000 }, async () => {
    const Weather = z.object({
      city: z.string().max(12),
      unit: z.enum(["C", "F"]).nullable(),
      days: z.array(z.object({ t: z.number(), sky: z.enum(["sun", "rain"]) })).max(3),
    });
    const agent = new Agent({
      name: "forecaster", instructions: "Answer as JSON.", model, outputType: Weather,
      modelSettings: { maxTokens: 400, temperature: 0 },
    });
    sent.length = 0;
    const result = await run(agent, "Weather in Paris for three days?", { maxTurns: 1 });
    const [post] = sent.filter((r) => r.method === "POST");
    assert.equal(post.path, "/v1/responses");
    assert.equal(post.body.text.format.type, "json_schema");
    assert.equal(post.body.text.format.strict, true);
    const out = result.finalOutput;
    assert.equal(typeof out, "object");
    assert.deepEqual(Weather.parse(out), out);
  });

  test("an answer cut at max_output_tokens fails the run, as it does against OpenAI", { timeout: 30_000 }, async () => {
    // Why the round trips above end under an outputType: the SDK takes a
    // response with status "incomplete" for an error, and the random-weight
    // model's free text only ever stops at the token limit.
    const agent = new Agent({ name: "talker", model, modelSettings: { maxTokens: 8, temperature: 0 } });
    await assert.rejects(run(agent, "Say hello.", { maxTurns: 1 }),
      { name: "ModelBehaviorError", message: /unsuccessful terminal state "response\.incomplete"/ });
  });
});
