// docs/protocol.md and the SDK's types agree: every JSON example in the doc
// uses only fields the matching TypeScript type declares, has the fields the
// type requires, and every event type in the doc is one the SDK knows. The
// field tables below are checked against the types by the compiler, both
// ways (a field the type lacks, or a type field the table lacks, does not
// compile).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import type { ClientEvent, Message, ServerEvent, ServerTool, Session, ToolCall, Usage } from "mnemo-client";

/** Every key of T, listed with whether it is required; exactly T's keys. */
type Fields<T> = { [K in keyof T]-?: object extends Pick<T, K> ? "optional" : "required" };
type EventFields<U extends { type: string }> = { [E in U as E["type"]]: Fields<Omit<E, "type">> };

const server: EventFields<ServerEvent> = {
  "session.created": { event_id: "optional", session: "required" },
  "session.resumed": { event_id: "optional", session: "required" },
  "session.listed": { event_id: "optional", sessions: "required", has_more: "required" },
  "session.history": { event_id: "optional", session: "required", messages: "required", has_more: "required" },
  "session.deleted": { event_id: "optional", session_id: "required" },
  "message.appended": { event_id: "optional", session_id: "required", indices: "required", message_count: "required" },
  "response.created": { event_id: "optional", response_id: "required", session_id: "required" },
  "response.delta": { response_id: "required", delta: "required" },
  "response.tool_call": { response_id: "required", tool_call: "required" },
  "response.done": {
    event_id: "optional", response_id: "required", session_id: "required", finish_reason: "required",
    message: "required", usage: "required", error: "optional", tool_turns: "optional",
  },
  "program.begun": { event_id: "optional", program_id: "required", session_id: "optional", started_at: "required" },
  "program.ended": { event_id: "optional", program_id: "required", duration_ms: "required" },
  "tool.started": { event_id: "optional", call_id: "required", started_at: "required" },
  "tool.ended": { event_id: "optional", call_id: "required", status: "required", duration_ms: "required" },
  "tool.start": {
    response_id: "required", session_id: "required", call_id: "required", name: "required", arguments: "required",
    program_id: "optional",
  },
  "tool.end": {
    response_id: "required", session_id: "required", call_id: "required", name: "required", status: "required",
    duration_ms: "required", output_bytes: "required", output: "required", error: "optional",
  },
  "tools.listed": { event_id: "optional", tools: "required" },
  pong: { event_id: "optional" },
  error: { event_id: "optional", code: "required", message: "required", field: "optional" },
};

const client: EventFields<ClientEvent> = {
  "session.create": { event_id: "optional", system: "optional", sampling: "optional", tools: "optional", metadata: "optional" },
  "session.resume": { event_id: "optional", session_id: "required" },
  "session.list": { event_id: "optional", limit: "optional", after: "optional" },
  "session.get": { event_id: "optional", session_id: "required", limit: "optional", before: "optional" },
  "session.delete": { event_id: "optional", session_id: "required" },
  "message.append": { event_id: "optional", session_id: "required", message: "optional", messages: "optional" },
  "response.create": {
    event_id: "optional", session_id: "required", sampling: "optional", tool_choice: "optional", program_id: "optional",
    server_tools: "optional", max_tool_turns: "optional",
  },
  "response.cancel": { event_id: "optional", response_id: "required" },
  "program.begin": { event_id: "optional", program_id: "optional", session_id: "optional", metadata: "optional" },
  "program.end": { event_id: "optional", program_id: "required" },
  "tool.start": {
    event_id: "optional", call_id: "required", name: "required", program_id: "optional", session_id: "optional",
    arguments: "optional",
  },
  "tool.end": { event_id: "optional", call_id: "required", status: "optional", result: "optional" },
  "tools.list": { event_id: "optional" },
  ping: { event_id: "optional" },
};

const objects = {
  session: { id: "required", created_at: "required", updated_at: "required", system: "required", sampling: "required",
    tools: "required", metadata: "required", message_count: "required" } satisfies Fields<Session>,
  message: { index: "optional", role: "required", content: "required", tool_calls: "optional", tool_call_id: "optional",
    name: "optional", created_at: "required" } satisfies Fields<Message>,
  usage: { prompt_tokens: "required", cached_tokens: "required", completion_tokens: "required" } satisfies Fields<Usage>,
  tool_call: { id: "required", name: "required", arguments: "required" } satisfies Fields<ToolCall>,
  server_tool: { name: "required", description: "required", parameters: "required", provider: "required",
    kind: "required" } satisfies Fields<ServerTool>,
};

const docPath = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "docs", "protocol.md");

function examples(): Record<string, unknown>[] {
  const text = readFileSync(docPath, "utf8");
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);
}

function checkFields(where: string, value: Record<string, unknown>, fields: Record<string, string>): void {
  for (const key of Object.keys(value)) {
    if (key === "type") continue;
    assert.ok(key in fields, `${where}: the doc has field "${key}", the SDK's type does not`);
  }
  for (const [key, kind] of Object.entries(fields)) {
    if (kind === "required") assert.ok(key in value, `${where}: the SDK's type requires "${key}", the doc's example lacks it`);
  }
}

test("every JSON example in docs/protocol.md fits the SDK's types", () => {
  const all = examples();
  assert.ok(all.length >= 30, `only ${all.length} JSON examples found in ${docPath}`);
  const seen = new Set<string>();
  for (const example of all) {
    const type = example.type;
    if (type === "function") continue; // a Tool, typed as the protocol's Tool
    if (typeof type !== "string") {
      // A bare object: Session, Sampling, Tool, Tool call or Message.
      if ("message_count" in example) checkFields("Session", example, objects.session);
      else if ("role" in example) checkFields("Message", example, objects.message);
      else if ("arguments" in example && "id" in example) checkFields("Tool call", example, objects.tool_call);
      continue;
    }
    // tool.start and tool.end are client events (the client's own tool timing)
    // and server events (a server-side tool running within a response).
    const isServer = type in server && (!(type in client) || "response_id" in example);
    assert.ok(isServer || type in client, `the doc's event type "${type}" is unknown to the SDK`);
    seen.add(`${isServer ? "server" : "client"} ${type}`);
    const table = (isServer ? server : client) as Record<string, Record<string, string>>;
    checkFields(type, example, table[type]!);
    if ("session" in example) checkFields(`${type}.session`, example.session as Record<string, unknown>, objects.session);
    for (const s of (example.sessions as Record<string, unknown>[] | undefined) ?? []) {
      checkFields(`${type}.sessions[]`, s, objects.session);
    }
    if (isServer && typeof example.message === "object") {
      checkFields(`${type}.message`, example.message as Record<string, unknown>, objects.message);
    }
    for (const m of (isServer ? (example.messages as Record<string, unknown>[] | undefined) : undefined) ?? []) {
      checkFields(`${type}.messages[]`, m, objects.message);
    }
    if ("usage" in example) checkFields(`${type}.usage`, example.usage as Record<string, unknown>, objects.usage);
    if ("tool_call" in example) checkFields(`${type}.tool_call`, example.tool_call as Record<string, unknown>, objects.tool_call);
    for (const t of (type === "tools.listed" ? (example.tools as Record<string, unknown>[] | undefined) : undefined) ?? []) {
      checkFields(`${type}.tools[]`, t, objects.server_tool);
    }
  }
  // The doc shows every event the SDK declares.
  const declared = [...Object.keys(server).map((t) => `server ${t}`), ...Object.keys(client).map((t) => `client ${t}`)];
  assert.deepEqual(declared.filter((t) => !seen.has(t)), []);
});
