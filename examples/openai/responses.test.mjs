// The stock openai package's Responses API against a real mnemod (MNEMOD:
// absolute path of the binary; skipped without it): create, a tool round
// trip chained by previous_response_id, streaming, retrieve, input items,
// delete, and the errors clients see.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import OpenAI from "openai";
import { ResponsesWS } from "openai/resources/responses/ws";

import { skip, startDaemon } from "./daemon.mjs";

const WEATHER = {
  type: "function",
  name: "get_weather",
  description: "Current weather for a city.",
  parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"] },
};

describe("openai Responses API against mnemod", { skip }, () => {
  let client;
  before(async () => {
    client = new OpenAI({ baseURL: await startDaemon(), apiKey: "unused", maxRetries: 0, timeout: 120_000 });
  });

  test("create returns a response the SDK reads", async () => {
    const r = await client.responses.create({ model: "mnemo", input: "Say hello.", max_output_tokens: 8,
      temperature: 0, metadata: { run: "1" } });
    assert.match(r.id, /^resp_/);
    assert.equal(r.object, "response");
    assert.ok(["completed", "incomplete"].includes(r.status));
    assert.equal(typeof r.output_text, "string");
    assert.equal(r.output[0].type, "message");
    assert.equal(r.output[0].content[0].type, "output_text");
    assert.equal(r.usage.output_tokens, 8);
    assert.equal(r.usage.input_tokens_details.cached_tokens, 0);
    assert.deepEqual(r.metadata, { run: "1" });
  });

  test("a function call round trip chained by previous_response_id reuses the chain", async () => {
    const first = await client.responses.create({ model: "mnemo", input: "Weather in Paris?", tools: [WEATHER],
      tool_choice: "required", max_output_tokens: 300, temperature: 0 });
    const call = first.output.find((i) => i.type === "function_call");
    assert.ok(call, JSON.stringify(first.output));
    assert.equal(call.name, "get_weather");
    assert.equal(typeof call.arguments, "string");
    assert.equal(typeof JSON.parse(call.arguments).city, "string");
    assert.ok(call.call_id);

    const second = await client.responses.create({ model: "mnemo", previous_response_id: first.id, tools: [WEATHER],
      input: [{ type: "function_call_output", call_id: call.call_id, output: "{\"temp_c\": 18}" }],
      max_output_tokens: 6, temperature: 0 });
    assert.equal(second.previous_response_id, first.id);
    // The chain's earlier turn is in the prompt and its KV is reused.
    assert.ok(second.usage.input_tokens > first.usage.input_tokens);
    assert.ok(second.usage.input_tokens_details.cached_tokens >= first.usage.input_tokens - 16,
      JSON.stringify(second.usage));

    const items = await client.responses.inputItems.list(second.id, { order: "asc" });
    assert.deepEqual(items.data.map((i) => i.type), ["function_call_output"]);
    assert.equal(items.data[0].call_id, call.call_id);

    const got = await client.responses.retrieve(first.id);
    assert.equal(got.id, first.id);
    assert.deepEqual(got.output, first.output);
  });

  test("text.format json_schema parses back into the schema (responses.parse)", async () => {
    const schema = { type: "object", additionalProperties: false, required: ["city", "days"],
      properties: { city: { type: "string", maxLength: 10 }, days: { type: "integer", minimum: 0 } } };
    const r = await client.responses.parse({ model: "mnemo", input: "Plan a trip.", max_output_tokens: 200,
      text: { format: { type: "json_schema", name: "trip", schema, strict: true } } });
    assert.equal(r.status, "completed");
    assert.deepEqual(Object.keys(r.output_parsed).sort(), ["city", "days"]);
    assert.equal(typeof r.output_parsed.city, "string");
    assert.ok(Number.isInteger(r.output_parsed.days) && r.output_parsed.days >= 0);
  });

  test("streaming follows OpenAI's event sequence", async () => {
    const stream = client.responses.stream({ model: "mnemo", input: "Count to three.", max_output_tokens: 5 });
    const types = [];
    let text = "";
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "response.output_text.delta") text += e.delta;
    }
    const final = await stream.finalResponse();
    assert.deepEqual(types.slice(0, 4), ["response.created", "response.in_progress", "response.output_item.added",
      "response.content_part.added"]);
    assert.ok(types.includes("response.output_text.done") && types.includes("response.output_item.done"));
    assert.ok(["response.completed", "response.incomplete"].includes(types.at(-1)));
    assert.equal(final.output_text, text);
  });

  test("WebSocket mode: two responses in sequence on one socket, chained", async () => {
    const socket = new ResponsesWS(client);
    const errors = [];
    const finished = [];
    const waiters = [];
    const wake = () => { for (const w of waiters.splice(0)) w(); };
    socket.on("error", (e) => { errors.push(e); wake(); });  // fail at once, never hang
    socket.on("event", (e) => {
      if (!["response.completed", "response.incomplete"].includes(e.type)) return;
      finished.push(e.response);
      wake();
    });
    const done = (n) => new Promise((resolve, reject) => {
      const check = () => (errors.length ? reject(errors[0]) : finished.length >= n ? resolve() : waiters.push(check));
      check();
    });
    const first = done(1);
    socket.send({ type: "response.create", model: "mnemo", input: "Hello there.", max_output_tokens: 4 });
    await first;
    const second = done(2);
    socket.send({ type: "response.create", model: "mnemo", input: "And again.", max_output_tokens: 4,
      previous_response_id: finished[0].id });
    await second;
    socket.close();
    assert.deepEqual(errors, []);
    assert.equal(finished[1].previous_response_id, finished[0].id);
    assert.ok(finished[1].usage.input_tokens_details.cached_tokens > 0);
    const stored = await client.responses.retrieve(finished[1].id);
    assert.equal(stored.id, finished[1].id);
  });

  test("delete, then retrieve and chaining are errors clients understand", async () => {
    const r = await client.responses.create({ model: "mnemo", input: "Hi", max_output_tokens: 2 });
    await client.responses.delete(r.id);  // rejects on any non-2xx
    await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404);
    await assert.rejects(client.responses.create({ model: "mnemo", previous_response_id: r.id, input: "again" }),
      (e) => e.status === 400 && e.param === "previous_response_id");
    await assert.rejects(client.responses.create({ model: "mnemo", input: "x", tools: [{ type: "web_search" }] }),
      (e) => e.status === 400 && e.param === "tools[0].type");
  });
});

describe("openai legacy completions against mnemod", { skip }, () => {
  test("completions.create with logprobs, and streamed", async () => {
    const client = new OpenAI({ baseURL: await startDaemon(), apiKey: "unused", maxRetries: 0, timeout: 120_000 });
    const r = await client.completions.create({ model: "mnemo", prompt: "Once upon a time", max_tokens: 5,
      temperature: 0, logprobs: 2 });
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices[0].logprobs.tokens.join(""), r.choices[0].text);
    assert.equal(r.usage.completion_tokens, 5);
    const stream = await client.completions.create({ model: "mnemo", prompt: "Once upon a time", max_tokens: 5,
      temperature: 0, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    assert.equal(text, r.choices[0].text);
  });
});
