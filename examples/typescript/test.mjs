// Runs the agent twice against a real mnemod (MNEMOD: absolute path of the
// binary; skipped without it): the first run creates and saves a session and
// calls a tool, the second resumes that session.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

const MNEMOD = process.env.MNEMOD ?? "";
const skip = !MNEMOD ? "MNEMOD is not set to a built mnemod binary" : !existsSync(MNEMOD) ? `no ${MNEMOD}` : false;
const dir = mkdtempSync(join(tmpdir(), "mnemo-agent-ts-"));
let daemon;
let url = "";

before(async () => {
  if (skip) return;
  daemon = spawn(MNEMOD, ["--port", "0", "--data-dir", dir, "--threads", "1", "--kv-cache-bytes", "64M"],
    { stdio: ["ignore", "pipe", "ignore"] });
  const lines = createInterface({ input: daemon.stdout });
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("mnemod did not start in 60 s")), 60_000);
    daemon.once("exit", (code) => reject(new Error(`mnemod exited with ${code}`)));
    lines.on("line", (line) => {
      const m = /^mnemod listening on (http:\/\/\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
});

after(async () => {
  if (daemon && daemon.exitCode === null) {
    const exited = new Promise((resolve) => daemon.once("exit", resolve));
    daemon.kill("SIGTERM");
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

const agent = (...args) => promisify(execFile)(process.execPath, ["dist/agent.js", "--state", join(dir, "state.json"), ...args],
  { env: { ...process.env, MNEMO_URL: url }, timeout: 120_000 });

test("a second run resumes the first run's session", { skip }, async () => {
  const first = await agent("--max-tokens", "300", "--max-turns", "2", "What is 6 * 7?");
  const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
  assert.match(state.session_id, /^sess_/);
  assert.match(first.stdout, new RegExp(`Created new session ${state.session_id}`));
  assert.match(first.stdout, /\[tool call\] (calculator|notes)\(/);
  assert.match(first.stdout, /turn 1: tool_calls; prompt \d+ tokens \(\d+ cached\)/);

  const second = await agent("--max-tokens", "300", "--max-turns", "2", "What did we compute?");
  assert.match(second.stdout, new RegExp(`Resumed session ${state.session_id} \\(\\d+ messages so far\\)`));
  assert.match(second.stdout, /turn 1: tool_calls; prompt \d+ tokens \(([1-9]\d*) cached\)/);
});
