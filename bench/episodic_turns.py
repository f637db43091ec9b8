#!/usr/bin/python3
"""Per-turn cost of a long conversation served with `episodic` memory against `full`.

Two mnemod processes on the same model (the built-in one, served from a copy
whose config allows the conversation's length: RoPE weights do not depend on
it), one session each, fed the same conversation: four topics interleaved a
pair of messages at a time, a question every ~4.5k tokens once the history
is past 6k, up to --tokens. Each question is asked of both daemons, one after
the other (A B per turn, so both see the same machine load).

  full      the whole history's KV; the prefix cache keeps it between turns,
            so a turn computes only the tokens added since the last one;
  episodic  session.create memory {policy: episodic, budget_tokens, episodes}:
            the history is clustered into episodes, each question is answered
            from its routed episode's compressed cache plus the new turn.

Per turn: seconds to response.done, prompt and cached tokens, the KV slots
the turn attended over, and for episodic the build seconds spent in that turn
and whether a cache was built from scratch, continued, or reused (from
/metrics). Prints a table and writes JSON.

  /usr/bin/python3 bench/episodic_turns.py --mnemod build/mnemod [--tokens 32000] [--json PATH]
"""
import argparse
import asyncio
import json
import pathlib
import re
import select
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request

import websockets

TOPICS = {
    "cooking": ("The recipe for batch {i} needs flour, butter and {n} grams of sugar; the oven was set to "
                "{d} degrees and the cake baked until the butter crust turned golden in the oven."),
    "astronomy": ("The telescope showed Jupiter and its moon number {i} tonight; the astronomer logged an "
                  "orbit of {n} hours and a brightness of {d} in the telescope notebook."),
    "gardening": ("In the garden bed {i} the tomatoes got {n} litres of water; the gardener pruned the roses "
                  "and spread {d} kilos of compost around the seedlings and the soil."),
    "sailing": ("The boat left harbour {i} with the mainsail reefed; the sailor trimmed the jib, logged {n} "
                "knots of wind and anchored the yacht after {d} nautical miles at sea."),
}
QUESTIONS = {
    "cooking": "How hot was the oven when the cake with the butter crust baked?",
    "astronomy": "Which moon of Jupiter did the telescope show, and its orbit?",
    "gardening": "How much compost did the gardener spread around the tomatoes?",
    "sailing": "How many knots of wind did the sailor log before anchoring the yacht?",
}


def default_model():
    home = pathlib.Path.home() / ".cache" / "mnemo" / "models" / "default"
    if not (home / "config.json").exists():
        raise SystemExit(f"no built-in model at {home}: run mnemod once (it generates it) or pass --model")
    return home


def long_copy(model, context, into):
    d = into / "model-long"
    shutil.copytree(model, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["max_position_embeddings"] = max(context, cfg.get("max_position_embeddings", 0))
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    return d


class Daemon:
    def __init__(self, mnemod, model, home, threads, kv_bytes):
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "mnemod.log"
        args = [mnemod, "--port", "0", "--data-dir", str(home), "--model", str(model), "--threads", str(threads),
                "--kv-cache-bytes", kv_bytes]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(self.log, "ab"), text=True)
        deadline = time.time() + 300
        while time.time() < deadline:
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                line = self.proc.stdout.readline()
                if line.startswith("mnemod listening on "):
                    self.port = int(line.rsplit(":", 1)[1])
                    return
            if self.proc.poll() is not None:
                break
        raise SystemExit("mnemod did not start: " + self.log.read_text()[-2000:])

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
            text = r.read().decode()
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(mnemo_session_memory_\w+) (\S+)$", text, re.M)}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Session:
    def __init__(self, daemon, memory):
        self.daemon, self.memory = daemon, memory

    async def open(self):
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.daemon.port}/v1/ws", max_size=None)
        create = {"type": "session.create", "sampling": {"max_tokens": 4, "temperature": 0}}
        if self.memory:
            create["memory"] = self.memory
        self.sid = (await self.rpc(create))["session"]["id"]

    async def rpc(self, msg):
        await self.ws.send(json.dumps(msg))
        while True:
            m = json.loads(await asyncio.wait_for(self.ws.recv(), 1800))
            if m.get("type") == "error":
                raise SystemExit(f"mnemod refused {msg['type']}: {m}")
            if m.get("type") not in ("response.delta", "response.started"):
                return m

    async def append(self, role, text):
        m = await self.rpc({"type": "message.append", "session_id": self.sid, "message": {"role": role, "content": text}})
        assert m["type"] == "message.appended", m

    async def respond(self):
        await self.ws.send(json.dumps({"type": "response.create", "session_id": self.sid}))
        while True:
            m = json.loads(await asyncio.wait_for(self.ws.recv(), 1800))
            if m.get("type") == "error":
                raise SystemExit(f"response failed: {m}")
            if m.get("type") == "response.done":
                return m


async def turn(s, question):
    await s.append("user", question)
    before = s.daemon.metrics() if s.memory else {}
    t0 = time.monotonic()
    done = await s.respond()
    seconds = time.monotonic() - t0
    u = done["usage"]
    row = {"seconds": seconds, "prompt_tokens": u["prompt_tokens"], "cached_tokens": u.get("cached_tokens", 0)}
    if s.memory:
        after = s.daemon.metrics()
        d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        # No "memory" while the history is within the budget: served whole.
        m = u.get("memory", {"episode": "-", "history_tokens": u["prompt_tokens"], "compressed_tokens": u["prompt_tokens"]})
        row.update({"episode": m["episode"], "history_tokens": m["history_tokens"],
                    "attended": m["history_tokens"] + u["prompt_tokens"] - m["compressed_tokens"],
                    "build_seconds": d.get("mnemo_session_memory_build_seconds_total", 0),
                    "builds": int(d.get("mnemo_session_memory_builds_total", 0)),
                    "rebuilds": int(d.get("mnemo_session_memory_rebuilds_total", 0)),
                    "background": int(d.get("mnemo_session_memory_background_builds_total", 0)),
                    "reclusters": int(d.get("mnemo_session_memory_reclusters_total", 0)),
                    "resident_tokens": after.get("mnemo_session_memory_resident_tokens", 0)})
    else:
        row["attended"] = u["prompt_tokens"]
    return row  # the answer is stored: it joins the history


async def conversation(sessions, target, first, every):
    for s in sessions:
        await s.open()
    topics = list(TOPICS)
    tokens, pair, asked, per_pair, next_ask = 0, 0, 0, 130, first
    turns = []
    while tokens < target:
        topic = topics[pair % len(topics)]
        for role in ("user", "assistant"):
            text = TOPICS[topic].format(i=pair, n=pair * 7 % 97 + 3, d=pair * 13 % 300 + 100)
            for s in sessions:
                await s.append(role, text)
        pair += 1
        tokens += per_pair
        if tokens < next_ask and tokens < target:
            continue
        q = QUESTIONS[topics[asked % len(topics)]]
        asked += 1
        rows = [await turn(s, q) for s in sessions]
        tokens = rows[0]["prompt_tokens"]
        per_pair = max(1, tokens // pair)
        turns.append(rows)
        print(f"  turn {asked}: {tokens} prompt tokens: " +
              ", ".join(f"{s.name} {r['seconds']:.1f} s" for s, r in zip(sessions, rows)), flush=True)
        next_ask = tokens + every
    return turns


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnemod", required=True)
    ap.add_argument("--model", help="model directory (default: the built-in model)")
    ap.add_argument("--tokens", type=int, default=32000, help="conversation length in tokens (default 32000)")
    ap.add_argument("--budget", type=int, default=4096)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--first", type=int, default=6000, help="first question at this many tokens")
    ap.add_argument("--every", type=int, default=4500, help="then a question every this many tokens")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="episodic_turns.json")
    a = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="mnemo-episodic-turns-"))
    model = long_copy(pathlib.Path(a.model) if a.model else default_model(), a.tokens + 8192, tmp)
    kv_tokens = a.tokens + 8192
    kv_bytes = f"{max(64, kv_tokens * 4096 >> 20) + 16}M"  # the built-in model: 4 KiB of KV a token
    print(f"load before: {load()}")
    full = Daemon(a.mnemod, model, tmp / "full", a.threads, kv_bytes)
    epi = Daemon(a.mnemod, model, tmp / "episodic", a.threads, kv_bytes)
    memory = {"policy": "episodic", "budget_tokens": a.budget, "episodes": a.episodes}
    sessions = [Session(full, None), Session(epi, memory)]
    sessions[0].name, sessions[1].name = "full", "episodic"
    try:
        turns = asyncio.run(conversation(sessions, a.tokens, a.first, a.every))
    finally:
        full.stop()
        epi.stop()
    print(f"load after: {load()}")
    print("\nthe episodic daemon's account of its caches:")
    for line in epi.log.read_text().splitlines():
        if any(w in line for w in ("re-clustered", "history tokens held", "rebuilding", "served from its cache",
                                   "background build")):
            print("  " + line.split("] ", 2)[-1])

    print(f"\n| turn | prompt tokens | full s | full KV attended | episodic s | episodic KV attended | episode | "
          f"build s | builds in the turn | background builds landed | re-clusters | resident tokens | episodic / full |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, (f, e) in enumerate(turns, 1):
        print(f"| {i} | {f['prompt_tokens']} | {f['seconds']:.1f} | {f['attended']} | {e['seconds']:.1f} | "
              f"{e['attended']} | {e['episode']} | {e['build_seconds']:.1f} | {e['builds'] - e['background']} | "
              f"{e['background']} | "
              f"{e['reclusters']} | {int(e['resident_tokens'])} | {e['seconds'] / f['seconds']:.2f} |")
    fs = [f["seconds"] for f, _ in turns]
    es = [e["seconds"] for _, e in turns]
    served = [e["seconds"] - e["build_seconds"] for _, e in turns]
    print(f"\nmedian turn: full {statistics.median(fs):.1f} s, episodic {statistics.median(es):.1f} s "
          f"(of which serving, build excluded: {statistics.median(served):.1f} s); total: full {sum(fs):.0f} s, "
          f"episodic {sum(es):.0f} s")
    print(f"resident KV at the end: full {turns[-1][0]['prompt_tokens']} tokens, episodic "
          f"{int(turns[-1][1]['resident_tokens'])} tokens ({a.episodes} episodes x budget {a.budget} + one block)")
    out = {"bench": "episodic_turns", "tokens": a.tokens, "budget": a.budget, "episodes": a.episodes,
           "threads": a.threads, "load_before_after": load(),
           "turns": [{"full": f, "episodic": e} for f, e in turns]}
    pathlib.Path(a.json).write_text(json.dumps(out, indent=2))
    print(f"wrote {a.json}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
