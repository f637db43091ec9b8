// npm start: the three calls against a running mnemod (see chat.mjs for where).
import { baseURL, makeClient, plain, streamed, toolRoundTrip } from "./chat.mjs";

const client = makeClient();
try {
  const model = (await client.models.list()).data[0].id;
  console.log(`mnemod at ${baseURL()}, model ${model}`);

  const p = await plain(client, model);
  console.log(`\n[plain] ${JSON.stringify(p.choices[0].message.content)} (${p.choices[0].finish_reason}; ` +
    `${p.usage.prompt_tokens} prompt tokens, ${p.usage.prompt_tokens_details.cached_tokens} cached)`);

  process.stdout.write("\n[streamed] ");
  const chunks = await streamed(client, model, (text) => process.stdout.write(text));
  console.log(`\n(${chunks.length} chunks; usage ${JSON.stringify(chunks.at(-1).usage)})`);

  const t = await toolRoundTrip(client, model);
  console.log(`\n[tools] ${t.call.function.name}(${t.call.function.arguments}) -> ${t.result}`);
  console.log(`[tools] then: ${JSON.stringify(t.second.choices[0].message.content)} (${t.second.choices[0].finish_reason}; ` +
    `${t.second.usage.prompt_tokens_details.cached_tokens} of ${t.second.usage.prompt_tokens} prompt tokens cached)`);
} catch (error) {
  if (error instanceof Error && error.constructor.name === "APIConnectionError") {
    console.error(`cannot reach mnemod at ${baseURL()}: start one with scripts/serve (see examples/README.md)`);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
