// Starts real mnemod processes on ephemeral loopback ports. MNEMOD names the
// binary; without it the daemon tests skip. The built-in model is generated
// once per binary into a temp dir and shared by every daemon (and every test
// file, which node --test runs as separate processes).

import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

const START_TIMEOUT_MS = 60_000;

export const MNEMOD = process.env.MNEMOD ?? "";

/** Why the daemon tests cannot run, or false when they can (pass it as `skip`). */
export const skipReason: string | false =
  !MNEMOD ? "MNEMOD is not set to the absolute path of a built mnemod binary"
  : !existsSync(MNEMOD) ? `MNEMOD=${MNEMOD} does not exist (build the mnemod target)`
  : false;

export class Daemon {
  port = 0;
  private proc: ChildProcess | undefined;
  readonly log: string;

  constructor(readonly dataDir: string, readonly args: string[]) {
    this.log = join(dataDir, "mnemod.log");
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/v1/ws`;
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    mkdirSync(this.dataDir, { recursive: true });
    const proc = spawn(MNEMOD, ["--port", "0", "--data-dir", this.dataDir, ...this.args], {
      stdio: ["ignore", "pipe", openSync(this.log, "a")],
    });
    this.proc = proc;
    const lines = createInterface({ input: proc.stdout! });
    this.port = await new Promise<number>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(new Error(`mnemod did not start (${why}); its log:\n${readFileSync(this.log, "utf8")}`));
      };
      const timer = setTimeout(() => fail(`no listening line in ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
      proc.once("exit", (code) => fail(`exited with ${code}`));
      lines.on("line", (line) => {
        const m = /^mnemod listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          proc.removeAllListeners("exit");
          resolve(Number(m[1]));
        }
      });
    });
    return this;
  }

  /** SIGTERM, then SIGKILL if it has not exited in time; resolves with the exit code. */
  async stop(timeoutMs = 30_000): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

function modelDir(): string {
  // Keyed by the binary so a rebuilt mnemod regenerates its model.
  const st = statSync(MNEMOD);
  const home = join(tmpdir(), `mnemo-client-test-${process.getuid?.() ?? 0}-${st.size}-${Math.floor(st.mtimeMs)}`);
  return join(home, "models", "default");
}

async function ensureModel(): Promise<string> {
  const dir = modelDir();
  if (existsSync(join(dir, "config.json")) && existsSync(join(dir, "tokenizer_config.json"))) return dir;
  const home = join(dir, "..", "..");
  const d = new Daemon(home, ["--threads", "1", "--kv-cache-bytes", "64M"]);
  await d.start();
  await d.stop();
  return dir;
}

const started: Daemon[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(started.map((d) => d.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A daemon on a fresh data dir serving the shared built-in model; stopped
 * (and its dir removed) when the test file ends. */
export async function startDaemon(...extra: string[]): Promise<Daemon> {
  const model = await ensureModel();
  const dataDir = mkdtempSync(join(tmpdir(), "mnemod-ts-"));
  dirs.push(dataDir);
  const d = new Daemon(dataDir, ["--model", model, "--threads", "1", "--kv-cache-bytes", "64M", ...extra]);
  started.push(d);
  return d.start();
}
