// The runtime's own WebSocket (browsers, Node 22+; Node 20 with
// --experimental-websocket, which `npm test` runs this file under) is used
// when there is one.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { MnemoClient } from "mnemo-client";
import { skipReason, startDaemon } from "./mnemod.js";

type Ctor = new (url: string) => object;
const native = (globalThis as { WebSocket?: Ctor }).WebSocket;

describe("global WebSocket", { skip: skipReason || (!native && "this runtime has no global WebSocket") }, () => {
  test("sessions and a streamed response over the global WebSocket", async () => {
    const daemon = await startDaemon();
    let made = 0;
    (globalThis as { WebSocket?: Ctor }).WebSocket = class extends native! {
      constructor(url: string) {
        super(url);
        made++;
      }
    };
    try {
      const client = await MnemoClient.connect({ url: daemon.url });
      assert.equal(made, 1);
      const sid = (await client.createSession({ sampling: { max_tokens: 4 } })).id;
      await client.append(sid, { role: "user", content: "hi" });
      let text = "";
      const stream = client.respond(sid);
      for await (const e of stream) if (e.type === "response.delta") text += e.delta;
      assert.equal((await stream.done()).message.content, text);
      await client.close();
    } finally {
      (globalThis as { WebSocket?: Ctor }).WebSocket = native;
    }
  });
});
