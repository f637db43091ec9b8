#!/usr/bin/python3
"""mnemod under N concurrent WebSocket sessions doing short turns.

For N in --sessions (default 1, 64, 512), a fresh mnemod (built-in model) is
started; N clients each connect, create a session, then run --turns turns of
message.append + response.create (a few tokens). Prints a Markdown table and
writes JSON: requests/s, p50/p99 latency of session.create and
message.append (client-measured on loopback), time to first token, and the
daemon's peak resident memory (VmHWM). Each --sync mode is a separate row.

  /usr/bin/python3 bench/daemon_bench.py --mnemod build/mnemod [--sessions 1,64,512]
      [--turns 3] [--tokens 4] [--sync full,process] [--json PATH]

The client is Python (asyncio + websockets): at high N its own scheduling is
part of the latency it reports, so the daemon's share is at most that. "Raw ping":
pings over a plain blocking socket with hand-made WebSocket frames, no
client library in the way: 2,000 on the idle daemon, then one every 2 ms
from a separate process while the N clients run (the control path under load).
"""
import argparse
import asyncio
import multiprocessing
import base64
import json
import os
import socket
import struct
import pathlib
import select
import signal
import subprocess
import sys
import tempfile
import time

import websockets


def pct(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


class Daemon:
    def __init__(self, binary, data_dir, model_dir, sync):
        args = [binary, "--port", "0", "--data-dir", data_dir, "--sync", sync, "--max-connections", "2048",
                "--log-level", "warn", "--kv-cache-bytes", "512M"]
        if model_dir:
            args += ["--model", model_dir]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if select.select([self.proc.stdout], [], [], 0.5)[0]:
                line = self.proc.stdout.readline()
                if line.startswith("mnemod listening on "):
                    self.port = int(line.rsplit(":", 1)[1])
                    return
            if self.proc.poll() is not None:
                break
        raise RuntimeError("mnemod did not start")

    def peak_rss_mb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def raw_ping_latencies(port, count, gap=0.0, stop=None, payload=b'{"type":"ping","event_id":"p"}'):
    """Ping round trips over a plain blocking socket speaking WebSocket framing
    directly: no event loop and no library between the clock and the wire, so
    this is the daemon's control path plus loopback."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head[:40]
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + masked

    def recv_exact(n):
        buf = b""
        while len(buf) < n:
            buf += s.recv(n - len(buf))
        return buf
    out = []
    while len(out) < count and not (stop and stop.is_set()):
        if gap:
            time.sleep(gap)
        t0 = time.perf_counter()
        s.sendall(frame)
        b0, b1 = recv_exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", recv_exact(2))[0]
        reply = recv_exact(n)
        out.append(time.perf_counter() - t0)
        assert b'"pong"' in reply, reply
    s.close()
    return out


async def client(port, turns, tokens, stats, start_gate):
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/ws", max_size=None, open_timeout=60) as ws:
        await start_gate.wait()
        n = 0

        async def rpc(ev):
            nonlocal n
            n += 1
            ev["event_id"] = str(n)
            t0 = time.perf_counter()
            await ws.send(json.dumps(ev))
            while True:
                m = json.loads(await ws.recv())
                if m.get("event_id") == ev["event_id"]:
                    return m, time.perf_counter() - t0

        for _ in range(3):
            _, dt = await rpc({"type": "ping"})
            stats["ping"].append(dt)
        m, dt = await rpc({"type": "session.create", "sampling": {"max_tokens": tokens, "temperature": 0}})
        stats["create"].append(dt)
        sid = m["session"]["id"]
        for t in range(turns):
            m, dt = await rpc({"type": "message.append", "session_id": sid,
                               "message": {"role": "user", "content": f"turn {t}: tell me more"}})
            assert m["type"] == "message.appended", m
            stats["append"].append(dt)
            n += 1
            eid = str(n)
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "response.create", "event_id": eid, "session_id": sid}))
            first = None
            while True:
                m = json.loads(await ws.recv())
                if m["type"] == "response.delta" and first is None:
                    first = time.perf_counter() - t0
                if m["type"] in ("response.done", "error") and m.get("event_id") == eid:
                    break
            assert m["type"] == "response.done", m
            stats["ttft"].append(first if first is not None else time.perf_counter() - t0)
            stats["responses"] += 1


def _raw_pinger(port, gap, stop, q):
    q.put(raw_ping_latencies(port, 10**9, gap, stop))


async def run_level(port, n, turns, tokens):
    stats = {"ping": [], "create": [], "append": [], "ttft": [], "responses": 0}
    # A separate process pings over a raw socket while the clients work: the
    # control path under load, without the asyncio client's own queue.
    ctx = multiprocessing.get_context("fork")
    q, stop = ctx.Queue(), ctx.Event()
    pinger = ctx.Process(target=_raw_pinger, args=(port, 0.002, stop, q))
    pinger.start()
    gate = asyncio.Event()
    tasks = [asyncio.create_task(client(port, turns, tokens, stats, gate)) for _ in range(n)]
    await asyncio.sleep(0.5 + n / 200)  # let every connection open first
    t0 = time.perf_counter()
    gate.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    stop.set()
    stats["raw_ping"] = q.get()
    pinger.join()
    requests = len(stats["ping"]) + len(stats["create"]) + len(stats["append"]) + stats["responses"]
    return stats, requests / wall, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnemod", default="build/mnemod")
    ap.add_argument("--model", default="", help="model dir (default: the built-in model)")
    ap.add_argument("--sessions", default="1,64,512")
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=4)
    ap.add_argument("--sync", default="full,process")
    ap.add_argument("--json", default="build/bench/daemon_bench.json")
    a = ap.parse_args()
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]} (2 cores)")
    home = tempfile.mkdtemp(prefix="mnemo-bench-")
    model = a.model
    if not model:  # one built-in model for every run: the first start generates it
        Daemon(a.mnemod, os.path.join(home, "gen"), "", "full").stop()
        model = os.path.join(home, "gen", "models", "default")
    rows = []
    for sync in a.sync.split(","):
        for n in [int(x) for x in a.sessions.split(",")]:
            d = Daemon(a.mnemod, os.path.join(home, f"{sync}-{n}"), model, sync)
            try:
                idle = raw_ping_latencies(d.port, 2000)
                stats, rps, wall = asyncio.run(run_level(d.port, n, a.turns, a.tokens))
                raw = stats["raw_ping"]
                rows.append({"sync": sync, "sessions": n, "requests/s": round(rps, 1),
                             "ping p50 ms": round(1e3 * pct(stats["ping"], 0.5), 2),
                             "ping p99 ms": round(1e3 * pct(stats["ping"], 0.99), 2),
                             "create p50 ms": round(1e3 * pct(stats["create"], 0.5), 2),
                             "create p99 ms": round(1e3 * pct(stats["create"], 0.99), 2),
                             "append p50 ms": round(1e3 * pct(stats["append"], 0.5), 2),
                             "append p99 ms": round(1e3 * pct(stats["append"], 0.99), 2),
                             "raw ping idle p50 ms": round(1e3 * pct(idle, 0.5), 3),
                             "raw ping idle p99 ms": round(1e3 * pct(idle, 0.99), 3),
                             "raw ping under load p50 ms": round(1e3 * pct(raw, 0.5), 3),
                             "raw ping under load p99 ms": round(1e3 * pct(raw, 0.99), 3),
                             "control p99 target ms": 1.0,
                             "TTFT p50 ms": round(1e3 * pct(stats["ttft"], 0.5), 1),
                             "TTFT p99 ms": round(1e3 * pct(stats["ttft"], 0.99), 1),
                             "peak RSS MB": round(d.peak_rss_mb(), 1), "wall s": round(wall, 2)})
                print(f"  {sync} N={n}: done in {wall:.1f} s", file=sys.stderr)
            finally:
                d.stop()
    cols = list(rows[0].keys())
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    print(f"\nturns per session: {a.turns}, tokens per response: {a.tokens}")
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(a.json).write_text(json.dumps({"rows": rows, "turns": a.turns, "tokens": a.tokens}, indent=1))
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
