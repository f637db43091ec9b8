// Three calls through the stock `openai` package against mnemod's
// OpenAI-compatible API: a plain completion, a streamed one, and a tool-call
// round trip (the model calls a tool, we run it, the model answers).
import OpenAI from "openai";

/** mnemod's /v1: $OPENAI_BASE_URL, else $MNEMO_URL (http://HOST:PORT) + /v1, else the default port. */
export function baseURL(env = process.env) {
  if (env.OPENAI_BASE_URL) return env.OPENAI_BASE_URL;
  if (env.MNEMO_URL) return new URL("/v1", env.MNEMO_URL.replace(/^ws/, "http")).toString();
  return "http://127.0.0.1:8420/v1";
}

export function makeClient(options = {}) {
  // The SDK insists on a key; mnemod only checks it when started with --api-key.
  return new OpenAI({ baseURL: baseURL(), apiKey: process.env.MNEMO_API_KEY || "unused", ...options });
}

export async function plain(client, model) {
  return client.chat.completions.create({
    model,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Say hello." }],
    max_tokens: 16,
  });
}

/** Returns every chunk; `onText` hears the text as it streams. */
export async function streamed(client, model, onText = () => {}) {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Count to five." }],
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    const text = chunk.choices[0]?.delta?.content;
    if (text) onText(text);
  }
  return chunks;
}

export const CALCULATOR = {
  type: "function",
  function: {
    name: "calculator",
    description: "Adds two numbers.",
    parameters: {
      type: "object",
      properties: { a: { type: "number" }, b: { type: "number" } },
      required: ["a", "b"],
    },
  },
};

function runCalculator(args) {
  const sum = Number(args.a) + Number(args.b);
  return JSON.stringify({ sum });
}

/** The first call must use the tool (tool_choice "required"); its result goes
 * back as a tool message and the second call answers. */
export async function toolRoundTrip(client, model) {
  const messages = [{ role: "user", content: "What is 2 + 3? Use the calculator." }];
  const first = await client.chat.completions.create({
    model, messages, tools: [CALCULATOR], tool_choice: "required", max_tokens: 200,
  });
  const call = first.choices[0].message.tool_calls[0];
  const args = JSON.parse(call.function.arguments);
  const result = runCalculator(args);
  messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: result });
  const second = await client.chat.completions.create({ model, messages, tools: [CALCULATOR], max_tokens: 32 });
  return { first, call, args, result, second };
}
