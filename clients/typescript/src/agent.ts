// The agent loop: model -> tools -> model, inside one program, the same as
// the Python SDK's `run`. program.begin/end wrap the run, every turn joins
// the program, and tool.start/tool.end bracket every tool, so the daemon sees
// the program's shape and times its tools (it keeps the program's KV cache
// while a tool is expected to run). Tool results go back as tool messages.
// With server_tools the daemon runs its configured tools itself within each
// response, and the loop runs only the calls it left to the client.

import type { MnemoClient } from "./client.js";
import type {
  FinishReason,
  JsonObject,
  Message,
  MessageInput,
  ResponseEvent,
  Sampling,
  ToolCall,
  ToolChoice,
  Usage,
} from "./protocol.js";
import type { ServerToolRun } from "./response.js";
import type { ToolRegistry } from "./tool_registry.js";

export interface ToolResult {
  call_id: string;
  name: string;
  /** "error" when the tool threw or is unknown. */
  status: "ok" | "error";
  /** The tool message's content. */
  result: string;
  /** As the daemon measured it, from tool.start to tool.end. */
  duration_ms: number;
}

export interface TurnReport {
  /** From 1. */
  turn: number;
  response_id: string;
  finish_reason: FinishReason;
  /** This turn's tokens: prompt, of which cached (reused KV), and completion. */
  usage: Usage;
  /** The last message's calls (with server_tools, the daemon's among them). */
  tool_calls: ToolCall[];
  /** The client's tools, run after the response. */
  tool_results: ToolResult[];
  /** Rounds of server-side tools within the response (0 without server_tools). */
  tool_turns: number;
  /** The tools the daemon ran within the response. */
  server_tool_runs: ServerToolRun[];
}

export interface RunOptions {
  /** tool_choice of every turn after the first; default "auto". */
  tool_choice?: ToolChoice;
  /** The first turn's tool_choice (e.g. "required" to make the model use a
   * tool); default: `tool_choice`. */
  first_tool_choice?: ToolChoice;
  /** Most responses; default 8. */
  max_turns?: number;
  sampling?: Sampling;
  /** Stored with the program. */
  program_metadata?: JsonObject;
  /** Cancels the running response (or stops before the next tool) and
   * rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Per response: longest wait for its next event. */
  timeoutMs?: number;
  /** Lets the daemon run its configured tools within each response (see
   * ResponseParams.server_tools); `tools` then answers only the calls the
   * daemon left to the client. */
  server_tools?: boolean | string[];
  /** Per response: most rounds of server-side tools (daemon default 8). */
  max_tool_turns?: number;
  /** Every response event as it streams (to print deltas as they come). */
  onEvent?: (event: ResponseEvent) => void;
  /** After each turn, once its tools have run. */
  onTurn?: (turn: TurnReport) => void;
}

export interface RunResult {
  program_id: string;
  /** The last assistant message. */
  message: Message;
  /** The last turn's; "tool_calls" means the run stopped at max_turns with its tools answered. */
  finish_reason: FinishReason;
  turns: TurnReport[];
  /** Sums over the turns. */
  usage: Usage;
  /** Rounds of server-side tools over the whole run. */
  tool_turns: number;
}

function asMessages(prompt: string | MessageInput | MessageInput[] | undefined): MessageInput[] {
  if (prompt === undefined) return [];
  if (typeof prompt === "string") return [{ role: "user", content: prompt }];
  return Array.isArray(prompt) ? prompt : [prompt];
}

function sum(turns: TurnReport[]): Usage {
  const total: Usage = { prompt_tokens: 0, cached_tokens: 0, completion_tokens: 0 };
  for (const { usage } of turns) {
    total.prompt_tokens += usage.prompt_tokens;
    total.cached_tokens += usage.cached_tokens;
    total.completion_tokens += usage.completion_tokens;
  }
  return total;
}

async function runTool(client: MnemoClient, tools: ToolRegistry, call: ToolCall, program_id: string,
                       session_id: string, signal: AbortSignal | undefined): Promise<ToolResult> {
  await client.startTool({ call_id: call.id, name: call.name, program_id, session_id, arguments: call.arguments });
  const { status, result } = await tools.call(call, { call, session_id, program_id, signal });
  const ended = await client.endTool({ call_id: call.id, status, result });
  return { call_id: call.id, name: call.name, status, result, duration_ms: ended.duration_ms };
}

/** Appends `prompt` (text becomes a user message), then alternates responses
 * and tool calls until the model answers without calling a tool, or
 * `max_turns` responses were made. The session must have been created with
 * these tools (`tools: registry.definitions()`). */
export async function run(client: MnemoClient, sessionId: string,
                          prompt: string | MessageInput | MessageInput[] | undefined,
                          tools: ToolRegistry, options: RunOptions = {}): Promise<RunResult> {
  const maxTurns = options.max_turns ?? 8;
  if (!(maxTurns >= 1)) throw new RangeError("max_turns must be at least 1");
  const { signal } = options;
  signal?.throwIfAborted();

  const begun = await client.beginProgram({
    session_id: sessionId,
    ...(options.program_metadata ? { metadata: options.program_metadata } : {}),
  });
  const programId = begun.program_id;
  const turns: TurnReport[] = [];
  try {
    const input = asMessages(prompt);
    if (input.length > 0) await client.append(sessionId, input);
    for (let turn = 1; turn <= maxTurns; turn++) {
      const later = options.tool_choice ?? "auto";
      const choice = turn === 1 ? options.first_tool_choice ?? later : later;
      const stream = client.respond(sessionId, {
        tool_choice: choice,
        program_id: programId,
        ...(options.sampling ? { sampling: options.sampling } : {}),
        ...(options.server_tools ? { server_tools: options.server_tools } : {}),
        ...(options.max_tool_turns !== undefined ? { max_tool_turns: options.max_tool_turns } : {}),
      }, {
        ...(signal ? { signal } : {}),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      });
      if (options.onEvent) for await (const event of stream) options.onEvent(event);
      const done = await stream.done();
      signal?.throwIfAborted();

      const calls = done.finish_reason === "tool_calls" ? done.message.tool_calls ?? [] : [];
      // The daemon has stored the results of the calls it ran; the rest are the client's.
      const serverRuns = stream.serverToolRuns;
      const ran = new Set(serverRuns.map((r) => r.call_id));
      const results: ToolResult[] = [];
      for (const call of calls.filter((c) => !ran.has(c.id))) {
        signal?.throwIfAborted();
        results.push(await runTool(client, tools, call, programId, sessionId, signal));
      }
      if (results.length > 0) {
        await client.append(sessionId, results.map((r) => ({
          role: "tool" as const, tool_call_id: r.call_id, name: r.name, content: r.result,
        })));
      }
      const report: TurnReport = {
        turn, response_id: done.response_id, finish_reason: done.finish_reason, usage: done.usage,
        tool_calls: calls, tool_results: results, tool_turns: done.tool_turns ?? 0, server_tool_runs: serverRuns,
      };
      turns.push(report);
      options.onTurn?.(report);
      if (calls.length === 0 || turn === maxTurns) {
        return {
          program_id: programId, message: done.message, finish_reason: done.finish_reason, turns, usage: sum(turns),
          tool_turns: turns.reduce((n, t) => n + t.tool_turns, 0),
        };
      }
    }
    throw new RangeError("unreachable: the loop returns on its last turn");
  } finally {
    // Also after a failure, so the daemon stops keeping the program's cache;
    // an error here must not hide the one that ended the run.
    if (!client.connection.closed) await client.endProgram(programId).catch(() => {});
  }
}
