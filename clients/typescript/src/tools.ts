// Tools the model can call, and the agent loop that runs them: model ->
// tools -> model until the model answers in text. The loop tells the daemon
// the program's shape (program.begin/end, tool.start/end) so it can keep the
// program's KV cache while the tools run.

import type { MnemoClient } from "./client.js";
import type {
  FinishReason,
  JsonObject,
  Message,
  MessageInput,
  ResponseEvent,
  Sampling,
  Tool,
  ToolCall,
  ToolChoice,
  Usage,
} from "./protocol.js";

export interface ToolContext {
  call: ToolCall;
  session_id: string;
  program_id: string;
  signal: AbortSignal | undefined;
}

/** Returns the result shown to the model: a string as is, anything else as
 * JSON. A throw becomes a result with status "error". */
export type ToolFunction = (args: JsonObject, context: ToolContext) => unknown;

export interface ToolSpec {
  description?: string;
  /** JSON Schema of the arguments; default: an object with no properties. */
  parameters?: JsonObject;
}

export interface ToolResult {
  call_id: string;
  name: string;
  status: "ok" | "error";
  result: string;
  /** As the daemon measured it between tool.start and tool.end. */
  duration_ms: number;
}

export interface TurnReport {
  /** From 1. */
  turn: number;
  response_id: string;
  finish_reason: FinishReason;
  /** This turn's usage; cached_tokens is the prompt part served from the KV cache. */
  usage: Usage;
  tool_calls: ToolCall[];
  tool_results: ToolResult[];
}

export interface RunOptions {
  /** Appended before the first turn: text becomes a user message. */
  input?: string | MessageInput | MessageInput[];
  /** tool_choice of the first turn; default "auto". */
  tool_choice?: ToolChoice;
  /** tool_choice of later turns; default "auto". The last allowed turn is always "none". */
  followup_tool_choice?: ToolChoice;
  sampling?: Sampling;
  /** Most model turns; default 8. */
  max_turns?: number;
  /** Stored with the program. */
  metadata?: JsonObject;
  /** Cancels the running response (or stops between tools) and rejects with the signal's reason. */
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Every response event, as it streams. */
  onEvent?: (event: ResponseEvent) => void;
  /** After each turn, once its tools have run. */
  onTurn?: (turn: TurnReport) => void;
}

export interface RunResult {
  program_id: string;
  /** The last assistant message. */
  message: Message;
  finish_reason: FinishReason;
  turns: TurnReport[];
  /** Sums over the turns. */
  usage: Usage;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

function asMessages(input: RunOptions["input"]): MessageInput[] {
  if (input === undefined) return [];
  if (typeof input === "string") return [{ role: "user", content: input }];
  return Array.isArray(input) ? input : [input];
}

function toText(value: unknown): string {
  if (typeof value === "string") return value;
  return JSON.stringify(value) ?? "null";
}

export class Toolbox {
  private readonly tools = new Map<string, { spec: Tool; fn: ToolFunction }>();

  /** Registers `fn` as tool `name`; a second registration replaces the first. */
  register(name: string, spec: ToolSpec, fn: ToolFunction): this {
    if (!NAME.test(name)) throw new TypeError(`tool name ${JSON.stringify(name)}: expected 1 to 64 of a-z A-Z 0-9 _ -`);
    const fnSpec = {
      name,
      ...(spec.description !== undefined ? { description: spec.description } : {}),
      parameters: spec.parameters ?? { type: "object", properties: {} },
    };
    this.tools.set(name, { spec: { type: "function", function: fnSpec }, fn });
    return this;
  }

  /** The tool definitions for session.create's `tools`. */
  definitions(): Tool[] {
    return [...this.tools.values()].map((t) => t.spec);
  }

  /** Runs one call; never throws (a failure is a result with status "error"). */
  async call(call: ToolCall, context: ToolContext): Promise<{ status: "ok" | "error"; result: string }> {
    const tool = this.tools.get(call.name);
    if (!tool) return { status: "error", result: `error: no tool named ${JSON.stringify(call.name)}` };
    try {
      return { status: "ok", result: toText(await tool.fn(call.arguments, context)) };
    } catch (error) {
      return { status: "error", result: `error: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  /** The agent loop on a session whose tools include these (create it with
   * `tools: toolbox.definitions()`). Each turn that ends in tool calls runs
   * them (tool.start / tool.end around each), appends their results as tool
   * messages and asks the model again. */
  async run(client: MnemoClient, sessionId: string, options: RunOptions = {}): Promise<RunResult> {
    const maxTurns = options.max_turns ?? 8;
    if (!(maxTurns >= 1)) throw new RangeError("max_turns must be at least 1");
    const signal = options.signal;
    signal?.throwIfAborted();

    const program = await client.beginProgram({
      session_id: sessionId,
      ...(options.metadata ? { metadata: options.metadata } : {}),
    });
    const programId = program.program_id;
    const turns: TurnReport[] = [];
    try {
      const input = asMessages(options.input);
      if (input.length > 0) await client.append(sessionId, input);
      for (let turn = 1; ; turn++) {
        const toolChoice: ToolChoice = turn === maxTurns
          ? "none"
          : turn === 1 ? options.tool_choice ?? "auto" : options.followup_tool_choice ?? "auto";
        const stream = client.respond(sessionId, {
          tool_choice: toolChoice,
          program_id: programId,
          ...(options.sampling ? { sampling: options.sampling } : {}),
        }, {
          ...(signal ? { signal } : {}),
          ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
        });
        if (options.onEvent) for await (const event of stream) options.onEvent(event);
        const done = await stream.done();
        signal?.throwIfAborted();

        const calls = done.finish_reason === "tool_calls" ? done.message.tool_calls ?? [] : [];
        const results: ToolResult[] = [];
        for (const call of calls) {
          signal?.throwIfAborted();
          await client.startTool({
            call_id: call.id, name: call.name, program_id: programId, session_id: sessionId, arguments: call.arguments,
          });
          const { status, result } = await this.call(call, {
            call, session_id: sessionId, program_id: programId, signal,
          });
          const ended = await client.endTool({ call_id: call.id, status, result });
          results.push({ call_id: call.id, name: call.name, status, result, duration_ms: ended.duration_ms });
        }
        if (results.length > 0) {
          await client.append(sessionId, results.map((r) => ({
            role: "tool" as const, tool_call_id: r.call_id, name: r.name, content: r.result,
          })));
        }
        const report: TurnReport = {
          turn, response_id: done.response_id, finish_reason: done.finish_reason, usage: done.usage,
          tool_calls: calls, tool_results: results,
        };
        turns.push(report);
        options.onTurn?.(report);
        if (calls.length === 0) {
          return { program_id: programId, message: done.message, finish_reason: done.finish_reason, turns, usage: sum(turns) };
        }
      }
    } finally {
      if (!client.connection.closed) await client.endProgram(programId).catch(() => {});
    }
  }
}

function sum(turns: TurnReport[]): Usage {
  const total: Usage = { prompt_tokens: 0, cached_tokens: 0, completion_tokens: 0 };
  for (const t of turns) {
    total.prompt_tokens += t.usage.prompt_tokens;
    total.cached_tokens += t.usage.cached_tokens;
    total.completion_tokens += t.usage.completion_tokens;
  }
  return total;
}
