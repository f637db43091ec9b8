// Streamed responses over a real mnemod: event order, deltas adding up to the
// stored message, usage with cached tokens, cancellation by AbortSignal and
// by leaving the loop, busy sessions.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { MnemoClient, ProtocolError, type ResponseEvent } from "mnemo-client";
import { skipReason, startDaemon, type Daemon } from "./mnemod.js";

describe("responses", { skip: skipReason }, () => {
  let client: MnemoClient;
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon();
    client = await MnemoClient.connect({ url: daemon.url });
  });
  after(async () => client?.close());

  async function sessionWith(text: string, maxTokens: number): Promise<string> {
    const sid = (await client.createSession({ system: "be brief", sampling: { max_tokens: maxTokens, temperature: 0 } })).id;
    await client.append(sid, { role: "user", content: text });
    return sid;
  }

  test("deltas, then done with the stored message and usage", async () => {
    const sid = await sessionWith("hello there", 6);
    const stream = client.respond(sid);
    const events: ResponseEvent[] = [];
    for await (const e of stream) events.push(e);
    assert.equal(events[0]!.type, "response.created");
    const done = events.at(-1)!;
    assert.equal(done.type, "response.done");
    if (done.type !== "response.done") return;
    assert.equal(events.filter((e) => e.type === "response.done").length, 1);
    assert.equal(done.event_id, stream.eventId);
    assert.equal(done.response_id, stream.responseId);
    assert.match(done.response_id, /^resp_/);
    assert.ok(done.finish_reason === "stop" || done.finish_reason === "length", done.finish_reason);
    const deltas = events.flatMap((e) => (e.type === "response.delta" ? [e.delta] : []));
    assert.ok(deltas.length > 0);
    assert.equal(done.message.content, deltas.join(""));
    assert.equal(done.message.role, "assistant");
    assert.equal(typeof done.message.index, "number");
    assert.ok(done.usage.prompt_tokens > 0);
    assert.ok(done.usage.completion_tokens >= 1 && done.usage.completion_tokens <= 6);
    assert.equal(await stream.text(), done.message.content);

    // The next turn starts from the KV cache the first one left.
    await client.append(sid, { role: "user", content: "and more" });
    const second = await client.respond(sid, { sampling: { max_tokens: 3 } }).done();
    assert.ok(second.usage.cached_tokens >= 16, JSON.stringify(second.usage));
    assert.ok(second.usage.completion_tokens <= 3);
    const { messages } = await client.getSession(sid);
    assert.deepEqual(messages.map((m) => m.role), ["user", "assistant", "user", "assistant"]);
    assert.equal(messages[1]!.content, done.message.content);
  });

  test("abort cancels the response and frees the session", async () => {
    const sid = await sessionWith("go on forever", 100_000);
    const controller = new AbortController();
    const stream = client.respond(sid, {}, { signal: controller.signal });
    let deltas = 0;
    for await (const e of stream) {
      if (e.type === "response.delta" && ++deltas === 3) controller.abort();
    }
    const done = await stream.done();
    assert.equal(done.finish_reason, "cancelled");
    assert.equal(done.message.index, undefined);
    assert.ok(done.usage.completion_tokens >= 3);
    // Not stored, and the session takes new messages right away.
    const appended = await client.append(sid, { role: "user", content: "next" });
    assert.equal(appended.message_count, 2);
  });

  test("leaving the loop early cancels and waits for the end", async () => {
    const sid = await sessionWith("keep talking", 100_000);
    const stream = client.respond(sid);
    for await (const e of stream) if (e.type === "response.delta") break;
    assert.equal((await stream.done()).finish_reason, "cancelled");
    assert.equal((await client.append(sid, { role: "user", content: "ok" })).message_count, 2);
  });

  test("another connection can cancel a response by id", async () => {
    const sid = await sessionWith("on and on", 100_000);
    const stream = client.respond(sid);
    const { response_id } = await stream.created();
    const other = await MnemoClient.connect({ url: daemon.url });
    other.cancel(response_id);
    assert.equal((await stream.done()).finish_reason, "cancelled");
    other.cancel(response_id); // ended already: ignored, not an error
    await other.ping();
    await other.close();
  });

  test("an already aborted signal sends nothing", async () => {
    const sid = await sessionWith("x", 4);
    const stream = client.respond(sid, {}, { signal: AbortSignal.abort() });
    await assert.rejects(stream.done(), { name: "AbortError" });
    assert.equal(stream.responseId, undefined);
    assert.equal((await client.getSession(sid)).messages.length, 1);
  });

  test("a second response on a busy session is refused with busy", async () => {
    const sid = await sessionWith("long one", 100_000);
    const first = client.respond(sid);
    await first.created();
    const second = client.respond(sid);
    await assert.rejects(second.done(), (e: unknown) => e instanceof ProtocolError && e.code === "busy");
    await assert.rejects(async () => {
      for await (const _ of second) assert.fail("no events expected");
    }, (e: unknown) => e instanceof ProtocolError && e.code === "busy");
    await assert.rejects(client.append(sid, { role: "user", content: "x" }),
      (e: unknown) => e instanceof ProtocolError && e.code === "busy" && e.eventId !== undefined);
    await first.cancel();
    assert.equal((await first.done()).finish_reason, "cancelled");
  });

  test("concurrent responses on one connection are kept apart", async () => {
    const sids = await Promise.all([1, 2, 3].map((i) => sessionWith(`n${i}`, 4 + i)));
    const dones = await Promise.all(sids.map(async (sid) => {
      const stream = client.respond(sid);
      let text = "";
      for await (const e of stream) if (e.type === "response.delta") text += e.delta;
      const done = await stream.done();
      assert.equal(done.session_id, sid);
      assert.equal(done.message.content, text);
      return done;
    }));
    assert.equal(new Set(dones.map((d) => d.response_id)).size, 3);
  });
});
