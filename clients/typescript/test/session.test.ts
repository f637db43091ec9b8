// Session lifecycle over a real mnemod: create, append, history, list,
// resume, delete; event_id correlation.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { MnemoClient, ProtocolError } from "mnemo-client";
import { skipReason, startDaemon, type Daemon } from "./mnemod.js";

describe("sessions", { skip: skipReason }, () => {
  let daemon: Daemon;
  let client: MnemoClient;
  before(async () => {
    daemon = await startDaemon();
    client = await MnemoClient.connect({ url: daemon.url });
  });
  after(async () => client?.close());

  test("create, append, history, delete", async () => {
    const session = await client.createSession({
      system: "be brief", sampling: { temperature: 0.2, max_tokens: 7, stop: "END" }, metadata: { user: "ada" },
    });
    assert.match(session.id, /^sess_/);
    assert.equal(session.system, "be brief");
    assert.deepEqual(session.sampling, { temperature: 0.2, max_tokens: 7, stop: ["END"] });
    assert.deepEqual(session.metadata, { user: "ada" });
    assert.deepEqual(session.tools, []);
    assert.equal(session.message_count, 0);

    const one = await client.append(session.id, { role: "user", content: "hello" });
    assert.equal(one.session_id, session.id);
    assert.equal(one.message_count, 1);
    assert.equal(one.indices.length, 1);
    const two = await client.append(session.id, [
      { role: "assistant", tool_calls: [{ id: "call_1", name: "calc", arguments: { expr: "1+1" } }] },
      { role: "tool", tool_call_id: "call_1", name: "calc", content: "2" },
    ]);
    assert.equal(two.message_count, 3);
    assert.deepEqual(two.indices, [one.indices[0]! + 1, one.indices[0]! + 2]);

    const { session: stored, messages } = await client.getSession(session.id);
    assert.equal(stored.message_count, 3);
    assert.deepEqual(messages.map((m) => m.role), ["user", "assistant", "tool"]);
    assert.deepEqual(messages.map((m) => m.index), [...one.indices, ...two.indices]);
    assert.equal(messages[0]!.content, "hello");
    assert.deepEqual(messages[1]!.tool_calls, [{ id: "call_1", name: "calc", arguments: { expr: "1+1" } }]);
    assert.equal(messages[2]!.tool_call_id, "call_1");
    assert.ok(messages.every((m) => Number.isInteger(m.created_at)));

    const resumed = await client.resumeSession(session.id);
    assert.equal(resumed.id, session.id);
    assert.equal(resumed.message_count, 3);

    await client.deleteSession(session.id);
    await assert.rejects(client.getSession(session.id), (e: unknown) => {
      assert.ok(e instanceof ProtocolError);
      assert.equal(e.code, "not_found");
      return true;
    });
  });

  test("list pages in id order", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.createSession({ metadata: { i } })).id);
    const first = await client.listSessions({ limit: 2 });
    assert.equal(first.sessions.length, 2);
    assert.equal(first.has_more, true);
    const all: string[] = [];
    for await (const s of client.allSessions(2)) all.push(s.id);
    assert.deepEqual(all.filter((id) => ids.includes(id)), ids);
    assert.deepEqual([...all].sort(), all);
    const rest = await client.listSessions({ after: ids[2]! });
    assert.deepEqual(rest.sessions.map((s) => s.id), ids.slice(3));
    assert.equal(rest.has_more, false);
  });

  test("replies are matched by event_id, including the caller's own", async () => {
    const sid = (await client.createSession()).id;
    // Several requests in flight at once each get their own reply.
    const [a, b, pong] = await Promise.all([
      client.append(sid, { role: "user", content: "a" }),
      client.connection.request({ type: "session.get", session_id: sid, event_id: "mine-42" }),
      client.connection.request({ type: "ping", event_id: "p" }),
    ]);
    assert.equal(a.type, "message.appended");
    assert.equal(b.type, "session.history");
    assert.equal(b.event_id, "mine-42");
    assert.equal(pong.type, "pong");
    assert.equal(pong.event_id, "p");
  });

  test("a session outlives the connection and the daemon", async () => {
    const sid = (await client.createSession({ system: "remember" })).id;
    await client.append(sid, { role: "user", content: "keep me" });
    const other = await MnemoClient.connect({ url: daemon.url });
    assert.equal((await other.getSession(sid)).messages[0]!.content, "keep me");
    await other.close();
    assert.equal(await daemon.stop(), 0);
    await daemon.start();
    const again = await MnemoClient.connect({ url: daemon.url });
    const resumed = await again.resumeSession(sid);
    assert.equal(resumed.system, "remember");
    assert.equal(resumed.message_count, 1);
    await again.close();
    client = await MnemoClient.connect({ url: daemon.url });
  });
});
