// The stock openai package against a real mnemod (MNEMOD: absolute path of
// the binary; skipped without it): the three calls of chat.mjs with their
// response shapes, and the API key.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import OpenAI from "openai";
import { CALCULATOR, plain, streamed, toolRoundTrip } from "./chat.mjs";
import { skip, startDaemon } from "./daemon.mjs";

describe("openai package against mnemod", { skip }, () => {
  let client;
  let model;
  before(async () => {
    client = new OpenAI({ baseURL: await startDaemon(), apiKey: "unused", maxRetries: 0, timeout: 120_000 });
    const models = await client.models.list();
    assert.equal(models.data[0].object, "model");
    model = models.data[0].id;
  });

  test("plain completion", async () => {
    const r = await plain(client, model);
    assert.equal(r.object, "chat.completion");
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.choices.length, 1);
    const [choice] = r.choices;
    assert.equal(choice.index, 0);
    assert.equal(choice.message.role, "assistant");
    assert.equal(typeof choice.message.content, "string");
    assert.ok(["stop", "length"].includes(choice.finish_reason), choice.finish_reason);
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 16);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, "number");
    // The same prompt again comes from the prefix cache.
    const again = await plain(client, model);
    assert.ok(again.usage.prompt_tokens_details.cached_tokens >= 16, JSON.stringify(again.usage));
  });

  test("streamed completion", async () => {
    let text = "";
    const chunks = await streamed(client, model, (t) => (text += t));
    assert.ok(chunks.length >= 3);
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
    const withChoice = chunks.filter((c) => c.choices.length > 0);
    assert.equal(withChoice[0].choices[0].delta.role, "assistant");
    const finishes = withChoice.map((c) => c.choices[0].finish_reason).filter(Boolean);
    assert.equal(finishes.length, 1);
    assert.ok(["stop", "length"].includes(finishes[0]));
    assert.ok(text.length > 0);
    // include_usage: the stream ends with a usage chunk without choices.
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage.completion_tokens > 0 && last.usage.completion_tokens <= 16);
    assert.equal(typeof last.usage.prompt_tokens_details.cached_tokens, "number");
  });

  test("tool-call round trip", async () => {
    const { first, call, args, second } = await toolRoundTrip(client, model);
    assert.equal(first.choices[0].finish_reason, "tool_calls");
    const calls = first.choices[0].message.tool_calls;
    assert.equal(calls.length, 1);
    assert.equal(call.type, "function");
    assert.equal(call.function.name, CALCULATOR.function.name);
    assert.equal(typeof call.id, "string");
    assert.equal(typeof call.function.arguments, "string");
    // Decoded under the schema: both required numbers, nothing else.
    assert.deepEqual(Object.keys(args).sort(), ["a", "b"]);
    assert.ok(typeof args.a === "number" && typeof args.b === "number");
    assert.equal(typeof first.usage.prompt_tokens_details.cached_tokens, "number");

    assert.ok(["stop", "length", "tool_calls"].includes(second.choices[0].finish_reason));
    assert.equal(second.choices[0].message.role, "assistant");
    // The second call's prompt starts with the first one's.
    assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens);
    assert.ok(second.usage.prompt_tokens_details.cached_tokens >= 16, JSON.stringify(second.usage));
  });

  test("streamed tool call", async () => {
    const stream = await client.chat.completions.create({
      model, messages: [{ role: "user", content: "2+3" }], tools: [CALCULATOR], tool_choice: "required",
      max_tokens: 200, stream: true,
    });
    let args = "";
    let finish;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) args += tc.function?.arguments ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    assert.deepEqual(Object.keys(JSON.parse(args)).sort(), ["a", "b"]);
  });

  test("structured output: response_format json_schema parses back into the schema", async () => {
    // Without zod: a plain JSON schema, as OpenAI strict mode has them.
    const schema = {
      type: "object", additionalProperties: false, required: ["city", "days", "unit"],
      properties: {
        city: { type: "string", maxLength: 12 },
        days: { type: "array", maxItems: 3, items: { $ref: "#/$defs/day" } },
        unit: { anyOf: [{ type: "string", enum: ["C", "F"] }, { type: "null" }] },
      },
      $defs: { day: { type: "object", additionalProperties: false, required: ["t"], properties: { t: { type: "number" } } } },
    };
    const r = await client.chat.completions.parse({
      model, messages: [{ role: "user", content: "weather as JSON" }], max_tokens: 600,
      response_format: { type: "json_schema", json_schema: { name: "weather", schema, strict: true } },
    });
    const { message, finish_reason } = r.choices[0];
    assert.equal(finish_reason, "stop");
    const parsed = message.parsed ?? JSON.parse(message.content);
    assert.deepEqual(Object.keys(parsed), ["city", "days", "unit"]);
    assert.ok(typeof parsed.city === "string" && Array.isArray(parsed.days) && parsed.days.length <= 3);
    assert.ok(parsed.days.every((d) => typeof d.t === "number"));
    assert.ok(parsed.unit === null || ["C", "F"].includes(parsed.unit));
    // A keyword the grammar cannot honour is a 400 naming it.
    await assert.rejects(client.chat.completions.create({
      model, messages: [{ role: "user", content: "x" }],
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "^a" } } },
    }), (e) => e instanceof OpenAI.BadRequestError && e.param === "response_format.json_schema.schema" && /pattern/.test(e.message));
  });

  test("n choices with logprobs, streamed logprobs, models.retrieve", async () => {
    const messages = [{ role: "user", content: "name three colours" }];
    const r = await client.chat.completions.create({
      model, messages, n: 2, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    let tokens = 0;
    for (const c of r.choices) {
      const content = c.logprobs.content;
      tokens += content.length;
      for (const e of content) {
        assert.ok(e.logprob <= 0 && e.top_logprobs.length === 3 && Array.isArray(e.bytes));
        assert.equal(e.top_logprobs[0].token, e.token);  // greedy
      }
    }
    assert.equal(r.usage.completion_tokens, tokens);
    // Streamed, each chunk carries the logprobs of the text it delivers.
    const streamed = [];
    for await (const chunk of await client.chat.completions.create({
      model, messages, max_tokens: 6, temperature: 0, logprobs: true, stream: true })) {
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    }
    assert.deepEqual(streamed.map((e) => e.token), r.choices[0].logprobs.content.map((e) => e.token));
    assert.equal((await client.models.retrieve(model)).id, model);
    await assert.rejects(client.models.retrieve("no-such-model"), (e) => e instanceof OpenAI.NotFoundError);
  });

  test("embeddings: the SDK's default base64, float, explicit base64, dimensions", async () => {
    const input = ["the tide came in", "a key-value store"];
    // Without encoding_format the SDK asks for base64 and decodes it to numbers.
    const r = await client.embeddings.create({ model, input });
    assert.equal(r.object, "list");
    assert.deepEqual(r.data.map((e) => [e.object, e.index]), [["embedding", 0], ["embedding", 1]]);
    const [a, b] = r.data.map((e) => e.embedding);
    assert.ok(Array.isArray(a) && a.length > 0 && a.length === b.length);
    const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm(a) - 1) < 1e-5 && Math.abs(norm(b) - 1) < 1e-5);
    assert.ok(a.some((x, i) => x !== b[i]));
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens);
    // float: the same float32 values as text.
    const f = await client.embeddings.create({ model, input, encoding_format: "float" });
    assert.deepEqual(f.data.map((e) => e.embedding.map(Math.fround)), [a, b]);
    // base64 asked for explicitly comes back as the string: little-endian float32.
    const s = await client.embeddings.create({ model, input: input[0], encoding_format: "base64" });
    const bytes = Buffer.from(s.data[0].embedding, "base64");
    assert.deepEqual(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)), a);
    await assert.rejects(client.embeddings.create({ model, input, dimensions: 8 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === "dimensions");
  });
});

describe("agent program inferred from a stock client", { skip }, () => {
  test("the second turn of a tool round trip is served from its program's pinned KV", async () => {
    // No extra fields: mnemod infers the program from the tool call and the
    // next prompt extending it; a fixed pin keeps the KV across the tool.
    const baseURL = await startDaemon("--kv-retention", "fixed:30");
    const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 120_000 });
    const model = (await client.models.list()).data[0].id;
    const { first, second } = await toolRoundTrip(client, model);
    assert.equal(first.choices[0].finish_reason, "tool_calls");
    // The whole previous conversation (its prompt and the generated call,
    // whose last token was never fed back), in whole 16-token blocks.
    const kv = first.usage.prompt_tokens + first.usage.completion_tokens - 1;
    const cached = second.usage.prompt_tokens_details.cached_tokens;
    assert.ok(cached >= Math.floor(kv / 16) * 16, `cached ${cached} of a ${kv}-token conversation`);
    const metrics = await (await fetch(baseURL.replace(/\/v1$/, "/metrics"))).text();
    const value = (name) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1]);
    assert.equal(value("mnemo_retention_hits"), 1, metrics);
    assert.equal(value("mnemo_ttl_seconds_count"), 1, metrics);
  });
});

describe("api key", { skip }, () => {
  test("a wrong key is a 401 AuthenticationError, the right one works", async () => {
    const baseURL = await startDaemon("--api-key", "sekret");
    const wrong = new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    const right = new OpenAI({ baseURL, apiKey: "sekret", maxRetries: 0 });
    assert.ok((await right.models.list()).data.length > 0);
  });
});
