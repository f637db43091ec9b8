// Reading a history page by page over a real mnemod: getHistory (one page),
// historyPages, and getSession, which reassembles a history longer than one
// page.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { MnemoClient, ProtocolError, type HistoryPage } from "mnemo-client";
import { skipReason, startDaemon } from "./mnemod.js";

describe("history paging", { skip: skipReason }, () => {
  let client: MnemoClient;
  let small: MnemoClient;
  before(async () => {
    client = await MnemoClient.connect({ url: (await startDaemon()).url });
    // A page holds at most a quarter of --max-frame-bytes (4 KiB here).
    small = await MnemoClient.connect({ url: (await startDaemon("--max-frame-bytes", "16384")).url });
  });
  after(async () => {
    await client?.close();
    await small?.close();
  });

  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  test("pages by count, newest first, then the whole history", async () => {
    const sid = (await client.createSession()).id;
    await client.append(sid, range(0, 250).map((i) => ({ role: "user" as const, content: `m${i}` })));

    const newest = await client.getHistory(sid, { limit: 100 });
    assert.deepEqual(newest.messages.map((m) => m.index), range(150, 250));
    assert.equal(newest.has_more, true);
    assert.equal(newest.session.message_count, 250);
    const first = await client.getHistory(sid, { limit: 100, before: 50 });
    assert.deepEqual(first.messages.map((m) => m.content), range(0, 50).map((i) => `m${i}`));
    assert.equal(first.has_more, false);

    const pages: HistoryPage[] = [];
    for await (const page of client.historyPages(sid, { limit: 100 })) pages.push(page);
    assert.deepEqual(pages.map((p) => p.messages.length), [100, 100, 50]);
    // The daemon's default page is 100 messages; getSession reads them all.
    assert.equal((await client.getHistory(sid)).messages.length, 100);
    const { session, messages } = await client.getSession(sid);
    assert.equal(session.message_count, 250);
    assert.deepEqual(messages.map((m) => m.content), range(0, 250).map((i) => `m${i}`));
  });

  test("an empty history is one empty page", async () => {
    const sid = (await client.createSession()).id;
    const pages: HistoryPage[] = [];
    for await (const page of client.historyPages(sid)) pages.push(page);
    assert.equal(pages.length, 1);
    assert.deepEqual(pages[0]!.messages, []);
    assert.equal(pages[0]!.has_more, false);
    assert.deepEqual((await client.getSession(sid)).messages, []);
  });

  test("large messages are cut by bytes and still read back whole", async () => {
    const sid = (await small.createSession()).id;
    const contents = range(0, 40).map((i) => String(i).padStart(3, "0") + "x".repeat(1500));
    for (let i = 0; i < contents.length; i += 4) {
      await small.append(sid, contents.slice(i, i + 4).map((content) => ({ role: "user" as const, content })));
    }
    const page = await small.getHistory(sid, { limit: 1000 });
    assert.ok(page.messages.length >= 1 && page.messages.length <= 2, `${page.messages.length} messages`);
    assert.equal(page.has_more, true);
    const { messages } = await small.getSession(sid);
    assert.deepEqual(messages.map((m) => m.content), contents);
    assert.deepEqual(messages.map((m) => m.index), range(0, 40));
  });

  test("bad page arguments are invalid_field", async () => {
    const sid = (await client.createSession()).id;
    for (const [params, field] of [[{ limit: 0 }, "limit"], [{ limit: 1001 }, "limit"], [{ before: -1 }, "before"]] as const) {
      await assert.rejects(client.getHistory(sid, params), (e: unknown) => {
        assert.ok(e instanceof ProtocolError);
        assert.equal(e.code, "invalid_field");
        assert.equal(e.field, field);
        return true;
      });
    }
    await client.ping();
  });
});
