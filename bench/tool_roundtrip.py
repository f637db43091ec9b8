#!/usr/bin/python3
"""A tool round trip run by mnemod (server_tools) against the same one run by the client.

One mnemod with a --tools file holding one command tool ("shout": a Python
one-liner that upper-cases its argument). Each rep asks, on a fresh session
with the same conversation, temperature 0 and a fixed seed, for a forced call
of that tool, and then for one more turn, in two ways, interleaved:

  client   the stock protocol: response.done (tool_calls) reaches the client,
           which runs the same argv itself, appends the result
           (message.append) and sends response.create for the next turn;
  server   response.create with server_tools: the daemon runs the tool and
           generates the next turn in the same response.

Both ways generate the same tokens (same prompt, greedy), so the time from
the first turn's call (its response.tool_call event: the call's last token)
to the next turn's first output (here its response.tool_call too: a forced
turn streams no text before its call is complete) differs only by what the
round trip itself costs. The tool's own time is reported beside it.

  /usr/bin/python3 bench/tool_roundtrip.py --mnemod build/mnemod [--reps 15] [--json PATH]
"""
import argparse
import asyncio
import json
import os
import pathlib
import select
import statistics
import subprocess
import sys
import tempfile
import time

import websockets

PY = "/usr/bin/python3"
SHOUT_ARGV = [PY, "-c", "import sys, json; sys.stdout.write(json.load(sys.stdin)['text'].upper())"]
TOOLS = {"commands": {"shout": {
    "argv": SHOUT_ARGV, "description": "Upper-cases a text.",
    "parameters": {"type": "object", "properties": {"text": {"type": "string", "maxLength": 24}},
                   "required": ["text"]}}}}
CHOICE = {"type": "function", "function": {"name": "shout"}}


def start(mnemod, home, tools_file, threads):
    args = [mnemod, "--port", "0", "--data-dir", str(home), "--threads", str(threads), "--tools", str(tools_file),
            "--kv-cache-bytes", "256M"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(home / "mnemod.log", "ab"), text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline()
            if line.startswith("mnemod listening on "):
                return proc, int(line.rsplit(":", 1)[1])
        if proc.poll() is not None:
            break
    raise SystemExit("mnemod did not start: " + (home / "mnemod.log").read_text()[-2000:])


class Conn:
    def __init__(self, ws):
        self.ws, self.n = ws, 0

    async def send(self, e):
        self.n += 1
        e = {**e, "event_id": f"e{self.n}"}
        await self.ws.send(json.dumps(e))
        return e["event_id"]

    async def recv(self):
        return json.loads(await asyncio.wait_for(self.ws.recv(), 120))

    async def rpc(self, e):
        eid = await self.send(e)
        while True:
            m = await self.recv()
            if m.get("event_id") == eid:
                return m


async def session(c, seed, client_tools):
    # The client's way declares the tool in the session, the server's gets it
    # from the daemon: the same definition, so the same prompt.
    tools = [{"type": "function", "function": {"name": "shout", **{k: v for k, v in TOOLS["commands"]["shout"].items()
                                                                   if k in ("description", "parameters")}}}]
    s = await c.rpc({"type": "session.create", "system": "You are a loud assistant. Use the shout tool.",
                     "sampling": {"max_tokens": 200, "temperature": 0, "seed": seed},
                     **({"tools": tools} if client_tools else {})})
    sid = s["session"]["id"]
    await c.rpc({"type": "message.append", "session_id": sid,
                 "message": {"role": "user", "content": "Please shout the word hello for me."}})
    return sid


async def until(c, kinds):
    """Events up to the first of `kinds`; returns (event, its arrival time)."""
    while True:
        m = await c.recv()
        if m["type"] == "error":
            raise SystemExit(f"mnemod error: {m}")
        if m["type"] in kinds:
            return m, time.perf_counter()


async def client_way(c, seed):
    sid = await session(c, seed, True)
    await c.send({"type": "response.create", "session_id": sid, "tool_choice": CHOICE})
    call, t_call = await until(c, {"response.tool_call"})
    done, _ = await until(c, {"response.done"})
    t0 = time.perf_counter()
    out = subprocess.run(SHOUT_ARGV, input=json.dumps(call["tool_call"]["arguments"]), capture_output=True,
                         text=True).stdout
    tool_ms = (time.perf_counter() - t0) * 1000
    await c.rpc({"type": "message.append", "session_id": sid,
                 "message": {"role": "tool", "tool_call_id": call["tool_call"]["id"], "name": "shout", "content": out}})
    await c.send({"type": "response.create", "session_id": sid, "tool_choice": CHOICE})
    nxt, t_next = await until(c, {"response.tool_call"})
    done2, _ = await until(c, {"response.done"})
    return (t_next - t_call) * 1000, tool_ms, call["tool_call"]["arguments"], done2["usage"]


async def server_way(c, seed):
    sid = await session(c, seed, False)
    await c.send({"type": "response.create", "session_id": sid, "tool_choice": CHOICE, "server_tools": True,
                  "max_tool_turns": 1})
    call, t_call = await until(c, {"response.tool_call"})
    end, _ = await until(c, {"tool.end"})
    nxt, t_next = await until(c, {"response.tool_call"})
    done, _ = await until(c, {"response.done"})
    assert end["status"] == "ok", end
    return (t_next - t_call) * 1000, end["duration_ms"], call["tool_call"]["arguments"], done["usage"]


async def bench(port, reps):
    rows = {"client": [], "server": []}
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/ws", max_size=None) as ws:
        c = Conn(ws)
        for way in ("client", "server"):  # warm-up, not counted
            await (client_way if way == "client" else server_way)(c, 7)
        for rep in range(reps):
            order = ("client", "server") if rep % 2 == 0 else ("server", "client")
            args = {}
            for way in order:
                ms, tool_ms, arguments, _ = await (client_way if way == "client" else server_way)(c, 7)
                rows[way].append({"call_to_next_ms": ms, "tool_ms": tool_ms})
                args[way] = arguments
            # The same tokens both ways, or the comparison means nothing.
            assert args["client"] == args["server"], args
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnemod", default="build/mnemod")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="build/bench/tool_roundtrip.json")
    a = ap.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        home = pathlib.Path(tmp)
        tools_file = home / "tools.json"
        tools_file.write_text(json.dumps(TOOLS))
        proc, port = start(a.mnemod, home, tools_file, a.threads)
        try:
            rows = asyncio.run(bench(port, a.reps))
        finally:
            proc.terminate()
            proc.wait(30)
    med = {w: statistics.median(r["call_to_next_ms"] for r in rows[w]) for w in rows}
    tool = {w: statistics.median(r["tool_ms"] for r in rows[w]) for w in rows}
    p90 = {w: sorted(r["call_to_next_ms"] for r in rows[w])[int(0.9 * (len(rows[w]) - 1))] for w in rows}
    saved = med["client"] - med["server"]
    print(f"tool round trip, {a.reps} reps each, interleaved; load average before: {load[0]:.2f} {load[1]:.2f} "
          f"on {os.cpu_count()} cores")
    print("| way | call -> next turn's call, median ms | p90 ms | tool's own time, median ms |")
    print("| --- | --- | --- | --- |")
    for w in ("client", "server"):
        print(f"| {w} | {med[w]:.1f} | {p90[w]:.1f} | {tool[w]:.1f} |")
    print(f"server-side saves {saved:.1f} ms per round trip (median); ratio server/client {med['server'] / med['client']:.3f}"
          f" (target: server-side no slower, ratio <= 1.0: {'PASS' if med['server'] <= med['client'] else 'MISS'})")
    out = {"reps": a.reps, "loadavg": load, "median_ms": med, "p90_ms": p90, "tool_median_ms": tool,
           "saved_ms": saved, "rows": rows}
    pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
