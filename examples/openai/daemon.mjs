// Starts mnemod for the tests of this folder: MNEMOD names the binary
// (absolute path); without it the suites are skipped. Each daemon gets a
// fresh data dir and an ephemeral port; all stop when the file's tests end.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after } from "node:test";

export const MNEMOD = process.env.MNEMOD ?? "";
export const skip = !MNEMOD ? "MNEMOD is not set to the absolute path of a built mnemod binary"
  : !existsSync(MNEMOD) ? `MNEMOD=${MNEMOD} does not exist` : false;
const dirs = [];
const daemons = [];

/** Starts mnemod on a fresh data dir and an ephemeral port; returns its /v1 URL. */
export async function startDaemon(...extra) {
  const dir = mkdtempSync(join(tmpdir(), "mnemo-openai-"));
  dirs.push(dir);
  const proc = spawn(MNEMOD, ["--port", "0", "--data-dir", dir, "--threads", "1", "--kv-cache-bytes", "64M", ...extra],
    { stdio: ["ignore", "pipe", "ignore"] });
  daemons.push(proc);
  const lines = createInterface({ input: proc.stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("mnemod did not start in 60 s")), 60_000);
    proc.once("exit", (code) => reject(new Error(`mnemod exited with ${code}`)));
    lines.on("line", (line) => {
      const m = /^mnemod listening on (http:\/\/\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(`${m[1]}/v1`);
      }
    });
  });
}

after(async () => {
  await Promise.all(daemons.filter((p) => p.exitCode === null).map((p) => {
    const exited = new Promise((resolve) => p.once("exit", resolve));
    p.kill("SIGTERM");
    return exited;
  }));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
