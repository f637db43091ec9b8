// A tool-using agent over a persistent Mnemo session (the TypeScript twin of
// examples/python/agent.py).
//
// It keeps its session id (and its notes) in a small state file: the first
// run creates a session, every later run resumes it, so the model sees the
// whole conversation so far. Needs a running mnemod at MNEMO_URL (default
// ws://127.0.0.1:8420/v1/ws); MNEMO_API_KEY if it was started with --api-key.
//
//   npm start -- "What is 12 * (3 + 4)? Note the answer."
//   npm start -- "What did we compute last time?"

import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";

import {
  ConnectionError,
  MnemoClient,
  ProtocolError,
  ToolRegistry,
  TimeoutError,
  type ResponseEvent,
  type ToolChoice,
} from "mnemo-client";

const DEFAULT_STATE = join(process.env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "mnemo", "agent_example_ts.json");
const SYSTEM = "You are a helpful assistant with a calculator and a notebook. Use the calculator for " +
  "arithmetic and the notes tool to remember things across conversations.";

/** Arithmetic only: numbers, + - * / // % ** and parentheses (no names, no calls). */
function evaluate(expression: string): number {
  const tokens = expression.match(/\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+|\*\*|\/\/|[-+*/%()]|\S/g) ?? [];
  let pos = 0;
  const peek = () => tokens[pos];
  const take = (t?: string) => {
    const token = tokens[pos++];
    if (t !== undefined && token !== t) throw new Error(`expected ${t} at token ${pos}, got ${token ?? "the end"}`);
    return token;
  };
  // Precedence climbing: sum > product > unary > power (right-assoc) > atom.
  const sum = (): number => {
    let v = product();
    while (peek() === "+" || peek() === "-") v = take() === "+" ? v + product() : v - product();
    return v;
  };
  const product = (): number => {
    let v = unary();
    for (let op = peek(); op === "*" || op === "/" || op === "//" || op === "%"; op = peek()) {
      take();
      const r = unary();
      v = op === "*" ? v * r : op === "/" ? v / r : op === "//" ? Math.floor(v / r) : v - r * Math.floor(v / r);
    }
    return v;
  };
  const unary = (): number => (peek() === "-" ? (take(), -unary()) : peek() === "+" ? (take(), unary()) : power());
  const power = (): number => {
    const base = atom();
    if (peek() !== "**") return base;
    take();
    const exponent = unary();
    if (Math.abs(exponent) > 1000) throw new Error("exponent too large");
    return base ** exponent;
  };
  const atom = (): number => {
    const t = take();
    if (t === "(") {
      const v = sum();
      take(")");
      return v;
    }
    if (t !== undefined && /^[\d.]/.test(t)) return Number(t);
    throw new Error(`not arithmetic: ${t ?? "nothing"} in ${JSON.stringify(expression)}`);
  };
  const value = sum();
  if (pos !== tokens.length) throw new Error(`not arithmetic: unexpected ${tokens[pos]}`);
  return value;
}

interface State {
  session_id?: string;
  notes?: string[];
}

class Agent {
  readonly state: State;
  readonly tools: ToolRegistry;

  constructor(readonly statePath: string) {
    this.state = existsSync(statePath) ? (JSON.parse(readFileSync(statePath, "utf8")) as State) : {};
    this.tools = new ToolRegistry()
      .register("calculator", {
        description: 'Evaluates an arithmetic expression, such as "12 * (3 + 4)".',
        parameters: {
          type: "object",
          properties: { expression: { type: "string", description: "numbers with + - * / // % ** and parentheses" } },
          required: ["expression"],
        },
      }, ({ expression }) => evaluate(String(expression)))
      .register("notes", {
        description: "Keeps notes that last across conversations.",
        parameters: {
          type: "object",
          properties: {
            action: { type: "string", enum: ["add", "list"], description: '"add" stores `text`, "list" returns every note' },
            text: { type: "string", description: "the note to add" },
          },
          required: ["action"],
        },
      }, ({ action, text }) => this.notes(String(action), typeof text === "string" ? text : undefined));
  }

  save(): void {
    mkdirSync(dirname(this.statePath), { recursive: true });
    writeFileSync(this.statePath, JSON.stringify(this.state, null, 2));
  }

  notes(action: string, text: string | undefined): string {
    const notes = (this.state.notes ??= []);
    if (action === "add") {
      if (!text) throw new Error("'add' needs text");
      notes.push(text);
      this.save();
      return `noted (${notes.length} notes)`;
    }
    return notes.map((n) => `- ${n}`).join("\n") || "(no notes yet)";
  }

  async openSession(client: MnemoClient): Promise<string> {
    const saved = this.state.session_id;
    if (saved) {
      try {
        const session = await client.resumeSession(saved);
        console.log(`Resumed session ${session.id} (${session.message_count} messages so far).`);
        return session.id;
      } catch (error) {
        if (!(error instanceof ProtocolError && error.code === "not_found")) throw error;
        console.log(`Session ${saved} is gone; starting a new one.`);
      }
    }
    const session = await client.createSession({ system: SYSTEM, tools: this.tools.definitions() });
    this.state.session_id = session.id;
    this.save();
    console.log(`Created new session ${session.id} (saved in ${this.statePath}).`);
    return session.id;
  }
}

function printEvent(event: ResponseEvent): void {
  if (event.type === "response.delta") process.stdout.write(event.delta);
  else if (event.type === "response.tool_call") {
    console.log(`\n[tool call] ${event.tool_call.name}(${JSON.stringify(event.tool_call.arguments)})`);
  } else if (event.type === "response.done") process.stdout.write("\n");
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      state: { type: "string", default: DEFAULT_STATE },
      new: { type: "boolean", default: false },
      // required by default, so even mnemod's built-in random-weight model uses the tools.
      "tool-choice": { type: "string", default: "required" },
      "max-tokens": { type: "string", default: "256" },
      "max-turns": { type: "string", default: "4" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npm start -- [--new] [--state FILE] [--tool-choice auto|required] [--max-tokens N] [--max-turns N] [MESSAGE...]");
    return 0;
  }
  const firstChoice = values["tool-choice"];
  if (firstChoice !== "auto" && firstChoice !== "required") throw new Error("--tool-choice: auto or required");

  const agent = new Agent(values.state);
  if (values.new) delete agent.state.session_id;
  const prompt = positionals.join(" ") || "What is 12 * (3 + 4)? Save the result as a note.";
  let client: MnemoClient;
  try {
    client = await MnemoClient.connect({ timeoutMs: 300_000 });
  } catch (error) {
    if (!(error instanceof ConnectionError || error instanceof TimeoutError)) throw error;
    console.error(`cannot reach mnemod: ${error.message}\nstart one with: scripts/serve (see examples/README.md)`);
    return 1;
  }
  try {
    const sessionId = await agent.openSession(client);
    console.log(`> ${prompt}`);
    const result = await client.run(sessionId, prompt, agent.tools, {
      first_tool_choice: firstChoice as ToolChoice,
      max_turns: Number(values["max-turns"]),
      sampling: { max_tokens: Number(values["max-tokens"]) },
      program_metadata: { agent: "examples/typescript/agent.ts" },
      onEvent: printEvent,
    });
    for (const turn of result.turns) {
      const u = turn.usage;
      const tools = turn.tool_results.map((t) => `${t.name} -> ${t.status}: ${t.result.slice(0, 60)}`).join(", ") || "no tools";
      console.log(`turn ${turn.turn}: ${turn.finish_reason}; prompt ${u.prompt_tokens} tokens ` +
        `(${u.cached_tokens} cached), ${u.completion_tokens} generated; ${tools}`);
    }
    console.log(`Session ${sessionId}: run again to continue it.`);
    return 0;
  } finally {
    await client.close();
  }
}

process.exitCode = await main();
