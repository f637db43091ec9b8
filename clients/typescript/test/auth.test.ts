// API key and URL: the Authorization header, 401 as a typed error, and the
// MNEMO_URL / MNEMO_API_KEY environment variables.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ConnectionError, DEFAULT_URL, MnemoClient, normalizeUrl } from "mnemo-client";
import { skipReason, startDaemon, type Daemon } from "./mnemod.js";

function is401(e: unknown): boolean {
  assert.ok(e instanceof ConnectionError, String(e));
  assert.equal(e.status, 401);
  return true;
}

describe("api key", { skip: skipReason }, () => {
  let daemon: Daemon;
  const saved = { url: process.env.MNEMO_URL, key: process.env.MNEMO_API_KEY };
  before(async () => {
    daemon = await startDaemon("--api-key", "sekret");
  });
  after(() => {
    for (const [name, value] of [["MNEMO_URL", saved.url], ["MNEMO_API_KEY", saved.key]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  test("no key or a wrong key is refused with 401", async () => {
    delete process.env.MNEMO_API_KEY;
    await assert.rejects(MnemoClient.connect({ url: daemon.url }), is401);
    await assert.rejects(MnemoClient.connect({ url: daemon.url, apiKey: "wrong" }), is401);
  });

  test("the right key connects", async () => {
    const client = await MnemoClient.connect({ url: daemon.url, apiKey: "sekret" });
    await client.ping();
    assert.match((await client.createSession()).id, /^sess_/);
    await client.close();
  });

  test("MNEMO_URL and MNEMO_API_KEY are used when no option is given", async () => {
    process.env.MNEMO_URL = daemon.http;
    process.env.MNEMO_API_KEY = "sekret";
    const client = await MnemoClient.connect();
    await client.ping();
    await client.close();
    // An option wins over the environment.
    await assert.rejects(MnemoClient.connect({ apiKey: "wrong" }), is401);
  });
});

describe("urls", () => {
  test("daemon and OpenAI-style addresses map to /v1/ws", () => {
    assert.equal(normalizeUrl("http://127.0.0.1:8420"), "ws://127.0.0.1:8420/v1/ws");
    assert.equal(normalizeUrl("http://127.0.0.1:8420/v1"), "ws://127.0.0.1:8420/v1/ws");
    assert.equal(normalizeUrl("https://mnemo.example/v1/"), "wss://mnemo.example/v1/ws");
    assert.equal(normalizeUrl("ws://127.0.0.1:1/custom/ws"), "ws://127.0.0.1:1/custom/ws");
    assert.equal(normalizeUrl(DEFAULT_URL), DEFAULT_URL);
    assert.throws(() => normalizeUrl("ftp://x"), TypeError);
  });
});
