// Tools the model can call: a name, a JSON Schema of the arguments and the
// function that runs them. The agent loop that calls them is agent.ts.

import type { JsonObject, Tool, ToolCall } from "./protocol.js";

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

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

function toText(value: unknown): string {
  if (typeof value === "string") return value;
  return JSON.stringify(value) ?? "null";
}

export class ToolRegistry {
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
}
