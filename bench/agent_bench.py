#!/usr/bin/python3
"""Agent programs against mnemod's KV retention policies, under memory pressure.

Replays agent programs over HTTP (POST /v1/chat/completions, the stock OpenAI
request shape): each program grows one conversation turn by turn. Turn i
appends its new prompt tokens (turn 0: system + user message; later: the
tool result), asks for a forced tool call (tool_choice "required" with one
tool, or the named tool when a trace program uses several; the last turn
tool_choice "none"), appends the assistant message exactly as returned plus
a tool message, sleeps the tool's duration and goes on. Programs arrive as a
seeded Poisson process; every policy replays the same programs.

For each rep, rate and policy (interleaved, so load drift on a shared machine
hits every policy alike) a fresh mnemod is started with a small
--kv-cache-bytes (the pool holds fewer programs than are active) and one of:
  none            --kv-retention none (LRU prefix cache, request FCFS)
  fixed:2         --kv-retention fixed:2 (the Continuum authors' code)
  continuum       --kv-retention continuum (TTL model, no host tier)
  continuum+host  --kv-retention continuum --host-kv-bytes N
A policy the binary lacks (no such flag in --help) is skipped with a reason;
a binary without --kv-retention runs "none" as plain mnemod (today's LRU).

  /usr/bin/python3 bench/agent_bench.py --mnemod build/mnemod [--workload swe|bfcl|trace:NAME]
      [--rates auto|R1,R2,R3] [--reps 1] [--programs 12] [--token-scale auto|F]
      [--policies none,fixed:2,continuum,continuum+host] [--json PATH] [--quick]

See bench/README.md ("agent_bench") for the workloads, assumptions and columns.
"""
import argparse
import http.client
import json
import math
import os
import pathlib
import random
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

POLICIES = {
    "none": ["--kv-retention", "none"],
    "fixed:2": ["--kv-retention", "fixed:2"],
    "continuum": ["--kv-retention", "continuum"],
    "continuum+host": ["--kv-retention", "continuum"],  # plus --host-kv-bytes
}
# The paper's Table 2 (arXiv 2511.02230v6), see ../shared/data/workloads/README.md.
# out_share: output tokens / new tokens per turn (SWE: the SWE-smith trace's 183 / (617 + 183);
# BFCL: an assumption, web-search calls are short and their results long).
# The paper's GPU prefilling Llama-3.1-8B (an assumption: Continuum does not
# publish its prefill speed); --tool-time-scale auto keeps re-prefill : tool
# time as there.
REF_PREFILL_TPS = 10000

SYNTHETIC = {
    "swe": dict(turns=(10.9, 2.1), tool_ms=(925, 3550), tokens=(70126, 19732), out_share=0.23, tool="bash"),
    "bfcl": dict(turns=(6.3, 2.3), tool_ms=(1923, 2133), tokens=(93256, 68687), out_share=0.10, tool="web_search"),
}
WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had by "
         "word but not what all were we when your can said there use an each which she do how their if will up "
         "other about out many then them these so some her would make like him into time has look two more write "
         "go see number no way could people my than first water been call who its now find long down day did get "
         "come made may part").split()
SYSTEM = "You are a software agent. Call exactly one tool per turn until the task is done."
RETENTION_WORDS = re.compile(r"park|retain|retention|expir|guard|tier|recompute|pin|host|ttl|preempt|evict|reload")


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def lognormal(rng, mean, sd):
    """A lognormal draw with the given mean and standard deviation (heavy-tailed for sd > mean)."""
    s2 = math.log(1 + (sd / mean) ** 2)
    return rng.lognormvariate(math.log(mean) - s2 / 2, math.sqrt(s2))


# ---------------------------------------------------------------- workloads

def synthetic_programs(kind, n, rng):
    """Programs in unscaled tokens. "Tokens per program" (Table 2) is read as the prompt tokens
    sent over the program (sum of request prompt lengths); with n turns that each add d tokens
    (first prompt d too), that sum is d * n (n + 1) / 2."""
    p = SYNTHETIC[kind]
    progs = []
    for _ in range(n):
        turns = max(2, round(rng.gauss(*p["turns"])))
        total = lognormal(rng, *p["tokens"])
        d = total / (turns * (turns + 1) / 2)
        out = d * p["out_share"]
        ts = []
        for i in range(turns):
            new = d if i == 0 else (d - out) * lognormal(rng, 1.0, 0.5)
            ts.append({"prompt_tokens": new, "output_tokens": out, "tool": p["tool"] if i < turns - 1 else None,
                       "tool_duration_s": lognormal(rng, p["tool_ms"][0] / 1e3, p["tool_ms"][1] / 1e3)
                       if i < turns - 1 else None})
        progs.append(ts)
    return progs


def trace_programs(path, n):
    """The trace's programs in order, cycled to n (each copy gets its own text, so copies share
    nothing but the system prompt). reasoning_tokens (Qwen trace) are ignored: they never return
    to the history."""
    base = [json.loads(l)["turns"] for l in open(path) if l.strip()]
    return [base[i % len(base)] for i in range(n)]


def final_context(turns):
    return sum(t["prompt_tokens"] for t in turns) + sum(t["output_tokens"] for t in turns[:-1])


class Program:
    """One program made concrete in words and character counts for the served tokenizer."""

    def __init__(self, idx, turns, arrival, scale, cal, max_ctx, rng):
        self.idx, self.arrival = idx, arrival
        ctx = final_context(turns) * scale
        self.clamped = ctx > max_ctx
        if self.clamped:  # keep the program inside the model's context: shrink it as a whole
            scale *= max_ctx / ctx
        self.turns = []
        names = []
        for t in turns:
            if t["tool"] and re.sub(r"\W", "_", t["tool"])[:48] not in names:
                names.append(re.sub(r"\W", "_", t["tool"])[:48])
        # A tool's schema fixes its call's length (tools must be identical on every turn, or the
        # rendered prompt changes and no cached prefix survives): each tool's string argument is
        # as long as the mean output of the turns that call it.
        self.tools, self.call_budget = [], {}
        for name in names:
            outs = [t["output_tokens"] * scale for t in turns if t["tool"] and re.sub(r"\W", "_", t["tool"])[:48] == name]
            chars = int(max(1, (statistics.mean(outs) - cal["call_tokens"]) * cal["chars_per_token"]))
            chars = min(chars, 256)  # the daemon's cap on a schema's maxLength
            self.call_budget[name] = int(2 * (cal["call_tokens"] + chars / cal["chars_per_token"])) + 64
            self.tools.append({"type": "function", "function": {
                "name": name, "description": f"Runs {name}.",
                "parameters": {"type": "object", "properties": {"arg": {"type": "string", "minLength": chars,
                                                                        "maxLength": chars}},
                               "required": ["arg"]}}})
        for i, t in enumerate(turns):
            overhead = cal["user_overhead"] if i == 0 else cal["tool_overhead"]
            words = max(1, round((t["prompt_tokens"] * scale - overhead) / cal["tokens_per_word"]))
            text = " ".join(rng.choice(WORDS) for _ in range(words))
            if i == 0:
                text = f"Task {idx}-{rng.randrange(1 << 30)}: " + text  # no prefix shared across programs
            tool = re.sub(r"\W", "_", t["tool"])[:48] if t["tool"] and i < len(turns) - 1 else None
            self.turns.append({"text": text, "tool": tool, "sleep": float(t["tool_duration_s"] or 0.0),
                               "out": max(1, round(t["output_tokens"] * scale))})
        self.context = min(ctx, max_ctx)


# ---------------------------------------------------------------- the daemon

class Daemon:
    def __init__(self, binary, data_dir, model_dir, extra):
        os.makedirs(data_dir, exist_ok=True)
        self.log = os.path.join(data_dir, "mnemod.log")
        args = [binary, "--port", "0", "--data-dir", data_dir, "--sync", "process", "--log-level", "info", *extra]
        if model_dir:
            args += ["--model", model_dir]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(self.log, "ab"), text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if select.select([self.proc.stdout], [], [], 0.5)[0]:
                line = self.proc.stdout.readline()
                if line.startswith("mnemod listening on "):
                    self.port = int(line.rsplit(":", 1)[1])
                    return
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"mnemod {' '.join(extra)} did not start:\n{open(self.log).read()[-2000:]}")

    def pool_tokens(self):
        m = re.search(r"KV pool of (\d+) tokens", open(self.log).read())
        return int(m.group(1)) if m else 0

    def metrics(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def chat(conn, body, stream):
    """One completion: (assistant message, finish_reason, usage, client TTFT or None)."""
    t0 = time.perf_counter()
    if stream:
        body = dict(body, stream=True, stream_options={"include_usage": True})
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
    if not stream:
        j = json.loads(r.read())
        return j["choices"][0]["message"], j["choices"][0]["finish_reason"], j["usage"], None
    content, calls, finish, usage, ttft = "", {}, None, None, None
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        usage = chunk.get("usage") or usage
        for ch in chunk.get("choices", []):
            d = ch.get("delta", {})
            if (d.get("content") or d.get("tool_calls")) and ttft is None:
                ttft = time.perf_counter() - t0
            content += d.get("content") or ""
            for tc in d.get("tool_calls", []):
                c = calls.setdefault(tc["index"], {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                c["id"] = tc.get("id") or c["id"]
                c["function"]["name"] += tc.get("function", {}).get("name") or ""
                c["function"]["arguments"] += tc.get("function", {}).get("arguments") or ""
            finish = ch.get("finish_reason") or finish
    msg = {"role": "assistant", "content": content or None}
    if calls:
        msg["tool_calls"] = [calls[k] for k in sorted(calls)]
    return msg, finish, usage, ttft


def run_program(port, prog, t_start, a, out, lock):
    time.sleep(max(0.0, t_start + prog.arrival - time.perf_counter()))
    rec = {"program": prog.idx, "arrival": prog.arrival, "turns": 0, "prompt": [], "cached": [], "completion": [],
           "ttft": [], "forced_call_missed": 0, "error": None}
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prog.turns[0]["text"]}]
    last_tool = None
    try:
        for i, t in enumerate(prog.turns):
            last = i == len(prog.turns) - 1
            body = {"model": "mnemo", "messages": msgs, "temperature": 0, "tools": prog.tools}
            if last:
                body.update(tool_choice="none", max_tokens=t["out"])
            else:
                body["tool_choice"] = ("required" if len(prog.tools) == 1
                                       else {"type": "function", "function": {"name": t["tool"]}})
                body["max_tokens"] = prog.call_budget[t["tool"]]  # room to finish the call
            if a.continuum_fields:
                body.update(job_id=f"agent-bench-{prog.idx}", is_last_step=last, this_func_call=t["tool"],
                            last_func_call=last_tool)
            # a connection per request: a tool may sleep past the daemon's keep-alive --header-timeout
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            try:
                msg, finish, usage, ttft = chat(conn, body, a.stream)
            finally:
                conn.close()
            rec["prompt"].append(usage["prompt_tokens"])
            rec["cached"].append((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
            rec["completion"].append(usage["completion_tokens"])
            if ttft is not None:
                rec["ttft"].append(ttft)
            rec["turns"] += 1
            if last:
                break
            msgs.append(msg)
            nxt = prog.turns[i + 1]["text"]
            if msg.get("tool_calls"):
                msgs += [{"role": "tool", "tool_call_id": c["id"], "content": nxt if k == 0 else "ok"}
                         for k, c in enumerate(msg["tool_calls"])]
            else:  # the forced call did not complete (max_tokens): go on as a user turn
                rec["forced_call_missed"] += 1
                msgs.append({"role": "user", "content": nxt})
            last_tool = t["tool"]
            time.sleep(t["sleep"])
    except Exception as e:  # noqa: BLE001 - recorded and reported per row
        rec["error"] = f"turn {rec['turns']}: {e}"
    rec["done"] = time.perf_counter() - t_start
    with lock:
        out.append(rec)


def mean_active(recs):
    """Time-average number of programs between arrival and completion, and the peak."""
    ev = sorted([(r["arrival"], 1) for r in recs] + [(r["done"], -1) for r in recs])
    area, cur, peak, prev = 0.0, 0, 0, ev[0][0] if ev else 0.0
    for t, d in ev:
        area += cur * (t - prev)
        cur, prev = cur + d, t
        peak = max(peak, cur)
    span = (ev[-1][0] - ev[0][0]) if ev else 0.0
    return (area / span if span > 0 else 0.0), peak


def overhead_pct(m):
    """Scheduler + policy time as % of step time, when /metrics exposes both as seconds."""
    def total(pred):
        return sum(v for k, v in m.items() if pred(k.split("{")[0]))
    step = total(lambda k: "step" in k and "seconds" in k and (k.endswith("_sum") or k.endswith("_total"))
                 and not re.search(r"polic|sched", k))
    pol = total(lambda k: re.search(r"polic|sched", k) and "seconds" in k
                and (k.endswith("_sum") or k.endswith("_total")))
    return round(100 * pol / step, 3) if step > 0 and pol > 0 else None


def run_one(a, model, home, policy, rate, programs, tag, host_bytes):
    extra = ["--kv-cache-bytes", str(a.kv_bytes), "--threads", str(a.threads)]
    if a.retention_flags:
        extra += POLICIES[policy]
    if policy == "continuum+host":
        extra += ["--host-kv-bytes", str(host_bytes)]
    d = Daemon(a.mnemod, os.path.join(home, tag), model, extra)
    try:
        out, lock = [], threading.Lock()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=run_program, args=(d.port, p, t0, a, out, lock), daemon=True)
                   for p in programs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        m = d.metrics()
        pool = d.pool_tokens()
    finally:
        d.stop()
    ok = [r for r in out if not r["error"]]
    jct = [r["done"] - r["arrival"] for r in ok]
    prefilled = recomputed = 0
    for r in ok:
        for i in range(1, len(r["prompt"])):
            p = r["prompt"][i] - r["cached"][i]
            new = r["prompt"][i] - r["prompt"][i - 1] - r["completion"][i - 1]  # appended this turn
            prefilled += p
            recomputed += max(0, p - max(0, new))
    active, peak = mean_active(out)
    ttfts = [x for r in ok for x in r["ttft"]]
    server_ttft = (m.get("mnemo_time_to_first_token_seconds_sum", 0) /
                   m["mnemo_time_to_first_token_seconds_count"]) if m.get("mnemo_time_to_first_token_seconds_count") else None
    return {
        "policy": policy, "rate": rate, "programs": len(programs), "completed": len(ok),
        "errors": [r["error"] for r in out if r["error"]],
        "jct_mean_s": statistics.mean(jct) if jct else float("nan"),
        "jct_p50_s": pct(jct, 0.5), "jct_p95_s": pct(jct, 0.95),
        "makespan_s": (max(r["done"] for r in out) - min(r["arrival"] for r in out)) if out else float("nan"),
        "tokens_recomputed": recomputed, "tokens_prefilled_after_turn0": prefilled,
        "ttft_mean_ms": 1e3 * (statistics.mean(ttfts) if ttfts else server_ttft if server_ttft is not None else float("nan")),
        "ttft_source": "client (stream)" if ttfts else "server histogram",
        "overhead_pct": overhead_pct(m), "active_mean": active, "active_peak": peak, "pool_tokens": pool,
        "forced_call_missed": sum(r["forced_call_missed"] for r in out),
        "retention_metrics": {k: v for k, v in m.items() if k.startswith("mnemo_") and RETENTION_WORDS.search(k)
                              and "_bucket" not in k},
    }


# ---------------------------------------------------------------- calibration

def calibrate(binary, home):
    """Generates the built-in model and measures, on it, what the workload needs: tokens per word,
    message overheads, the forced call's size, bytes per KV token, prefill and decode speed."""
    d = Daemon(binary, os.path.join(home, "calibrate"), "", ["--kv-cache-bytes", "256M"])
    try:
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=300)
        rng = random.Random(7)

        def words(n):
            return " ".join(rng.choice(WORDS) for _ in range(n))

        def req(msgs, **kw):
            t = time.perf_counter()
            msg, fin, u, _ = chat(conn, dict({"messages": msgs, "temperature": 0}, **kw), False)
            return msg, fin, u, time.perf_counter() - t
        sysm = {"role": "system", "content": SYSTEM}
        base = req([sysm, {"role": "user", "content": "x"}], max_tokens=1)[2]["prompt_tokens"]
        long_ = req([sysm, {"role": "user", "content": "x " + words(800)}], max_tokens=1)[2]["prompt_tokens"]
        tpw = (long_ - base) / 800
        tool = {"type": "function", "function": {"name": "probe", "parameters": {"type": "object", "properties": {
            "arg": {"type": "string", "minLength": 1, "maxLength": 1}}, "required": ["arg"]}}}
        tool200 = json.loads(json.dumps(tool))
        tool200["function"]["parameters"]["properties"]["arg"].update(minLength=200, maxLength=200)
        msgs = [sysm, {"role": "user", "content": words(20)}]
        m1, _, u1, _ = req(msgs, tools=[tool], tool_choice="required", max_tokens=200)
        m200, _, u200, _ = req([sysm, {"role": "user", "content": words(20)}], tools=[tool200],
                               tool_choice="required", max_tokens=400)
        call_tokens = u1["completion_tokens"]
        cpt = 199 / max(1, u200["completion_tokens"] - call_tokens)
        msgs += [m1, {"role": "tool", "tool_call_id": m1["tool_calls"][0]["id"], "content": words(100)}]
        u2 = req(msgs, tools=[tool], tool_choice="required", max_tokens=200)[2]
        tool_overhead = u2["prompt_tokens"] - u1["prompt_tokens"] - u1["completion_tokens"] - 100 * tpw
        # prefill: cold 1,500-token prompts; decode: 64 tokens on a short prompt; best of 3 each
        # (the machine is shared: the fastest try is the engine's speed)
        prefill_tps = decode_tps = 0.0
        for k in range(3):
            _, _, u, dt = req([sysm, {"role": "user", "content": f"y{k} " + words(int(1500 / tpw))}], max_tokens=1)
            prefill_tps = max(prefill_tps, (u["prompt_tokens"] - u["prompt_tokens_details"]["cached_tokens"]) / dt)
            t1 = req([sysm, {"role": "user", "content": f"z{k} " + words(30)}], max_tokens=1)[3]
            t65 = req([sysm, {"role": "user", "content": f"w{k} " + words(30)}], max_tokens=65)[3]
            decode_tps = max(decode_tps, 64 / max(1e-3, t65 - t1))
        pool = d.pool_tokens()
        cfg = json.load(open(os.path.join(home, "calibrate", "models", "default", "config.json")))
    finally:
        d.stop()
    return {"tokens_per_word": tpw, "user_overhead": base - 1, "tool_overhead": max(1.0, tool_overhead),
            "call_tokens": call_tokens, "chars_per_token": cpt, "bytes_per_token": 256 * 2 ** 20 / pool,
            "prefill_tps": prefill_tps, "decode_tps": decode_tps,
            "max_context": cfg.get("max_position_embeddings", 4096),
            "model": os.path.join(home, "calibrate", "models", "default")}


def service_s(prog_turns, scale, cal, recompute):
    """Engine seconds a program needs: every turn prefilling its whole context (recompute) or
    only its new tokens, plus decoding the outputs."""
    s, ctx = 0.0, 0.0
    for t in prog_turns:
        new = t["prompt_tokens"] * scale
        s += (ctx + new if recompute else new) / cal["prefill_tps"] + t["output_tokens"] * scale / cal["decode_tps"]
        ctx += new + t["output_tokens"] * scale
    return s


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnemod", default="build/mnemod")
    ap.add_argument("--workload", default="swe", help="swe, bfcl (Table 2 generators) or trace:NAME "
                    "(NAME.jsonl in --workloads-dir)")
    ap.add_argument("--workloads-dir", default=str(pathlib.Path(__file__).resolve().parents[2] / "shared/data/workloads"))
    ap.add_argument("--programs", type=int, default=12)
    ap.add_argument("--max-turns", type=int, default=0, help="cut programs to this many turns (0: as generated)")
    ap.add_argument("--rates", default="auto", help="programs/s, comma-separated; auto: the rates at which "
                    "--loads times as many programs are active as the KV pool holds")
    ap.add_argument("--loads", default="1.5,3,5", help="active programs / programs the pool holds, for "
                    "--rates auto (Little's law with JCT = tool time + engine time with reuse; quick: the last)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--token-scale", default="auto", help="factor on every token count; auto: mean final "
                    "context = --target-context tokens")
    ap.add_argument("--target-context", type=int, default=1800)
    ap.add_argument("--tool-time-scale", default="auto", help="factor on every tool duration; auto: "
                    "token scale x %d / this engine's prefill tok/s, so re-prefilling a context costs the same "
                    "share of a tool's time as on the paper's GPU (assumed to prefill %d tok/s)" % (REF_PREFILL_TPS, REF_PREFILL_TPS))
    ap.add_argument("--utilizations", default="0.3,0.5,0.7", help="for --rates auto: engine utilization with "
                    "full reuse at each rate (rate = u / engine seconds per program); 'loads' uses --loads instead")
    ap.add_argument("--pool-programs", type=float, default=2.5,
                    help="KV pool size in mean final contexts (memory pressure), unless --kv-cache-bytes")
    ap.add_argument("--kv-cache-bytes", type=int, default=0)
    ap.add_argument("--host-kv-bytes", type=int, default=0, help="host tier for continuum+host (0: 8x the pool)")
    ap.add_argument("--policies", default="none,fixed:2,continuum,continuum+host")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--stream", action="store_true", help="stream responses (client TTFT)")
    ap.add_argument("--continuum-fields", action="store_true",
                    help="send job_id / is_last_step / this_func_call / last_func_call")
    ap.add_argument("--quick", action="store_true", help="one rate, one rep, 3 short programs")
    ap.add_argument("--json", default="build/bench/agent_bench.json")
    a = ap.parse_args()
    if a.quick:
        a.programs, a.reps, a.max_turns, a.target_context = min(a.programs, 3), 1, a.max_turns or 4, 400
    load_before = loadavg()
    print(f"load average before: {load_before} ({os.cpu_count()} cores)")

    help_text = subprocess.run([a.mnemod, "--help"], capture_output=True, text=True).stdout
    a.retention_flags = "--kv-retention" in help_text
    has_host = "--host-kv-bytes" in help_text
    policies, skipped = [], {}
    for p in a.policies.split(","):
        if p not in POLICIES:
            sys.exit(f"unknown policy {p}; known: {', '.join(POLICIES)}")
        if p != "none" and not a.retention_flags:
            skipped[p] = f"{a.mnemod} has no --kv-retention"
        elif p == "continuum+host" and not has_host:
            skipped[p] = f"{a.mnemod} has no --host-kv-bytes"
        else:
            policies.append(p)
    for p, why in skipped.items():
        print(f"skipping {p}: {why}")
    if not a.retention_flags and "none" in policies:
        print("'none' runs plain mnemod (no --kv-retention flag: today's LRU prefix cache)")
    if not policies:
        sys.exit("no policy to run")

    home = tempfile.mkdtemp(prefix="mnemo-agent-bench-")
    cal = calibrate(a.mnemod, home)
    rng = random.Random(a.seed)
    if a.workload in SYNTHETIC:
        raw = synthetic_programs(a.workload, a.programs, rng)
        source = f"generated from Table 2 ({a.workload})"
    elif a.workload.startswith("trace:"):
        path = os.path.join(a.workloads_dir, a.workload[6:] + ".jsonl")
        raw = trace_programs(path, a.programs)
        source = path
    else:
        sys.exit(f"unknown workload {a.workload}")
    if a.max_turns:
        raw = [[dict(t) for t in p[:a.max_turns]] for p in raw]
        for p in raw:
            p[-1].update(tool=None, tool_duration_s=None)
    mean_final = statistics.mean(final_context(p) for p in raw)
    scale = a.target_context / mean_final if a.token_scale == "auto" else float(a.token_scale)
    max_ctx = cal["max_context"] - 160  # room for the last output and the forced call
    if a.kv_cache_bytes:
        a.kv_bytes = a.kv_cache_bytes
    else:  # the pool holds --pool-programs mean contexts, and never less than the largest program
        largest = min(max_ctx, max(final_context(p) for p in raw) * scale)
        tokens = max(a.pool_programs * min(mean_final * scale, max_ctx), 1.3 * largest + 512)
        a.kv_bytes = int(math.ceil(tokens * cal["bytes_per_token"] / 2 ** 20)) * 2 ** 20
    host_bytes = a.host_kv_bytes or 8 * a.kv_bytes
    tool_scale = (scale * REF_PREFILL_TPS / cal["prefill_tps"] if a.tool_time_scale == "auto"
                  else float(a.tool_time_scale))
    for p in raw:
        for t in p:
            if t["tool_duration_s"]:
                t["tool_duration_s"] *= tool_scale
    s_recompute = statistics.mean(service_s(p, scale, cal, True) for p in raw)
    s_reuse = statistics.mean(service_s(p, scale, cal, False) for p in raw)
    tool_s = [t["tool_duration_s"] for p in raw for t in p if t["tool_duration_s"]]
    jct0 = statistics.mean(sum(t["tool_duration_s"] or 0 for t in p) for p in raw) + s_reuse
    pool_fit = a.kv_bytes / cal["bytes_per_token"] / min(mean_final * scale, max_ctx)
    if a.rates != "auto":
        rates = [float(x) for x in a.rates.split(",")]
    elif a.utilizations == "loads":
        rates = [round(float(f) * pool_fit / jct0, 4) for f in a.loads.split(",")]
    else:
        rates = [round(float(u) / s_reuse, 4) for u in a.utilizations.split(",")]
    if a.quick:
        rates = rates[-1:]

    print(f"workload: {source}; {len(raw)} programs, turns mean {statistics.mean(len(p) for p in raw):.1f}; "
          f"tool time mean {statistics.mean(tool_s) if tool_s else 0:.3f} s, p50 {pct(tool_s, .5):.3f} s, "
          f"max {max(tool_s, default=0):.2f} s")
    print(f"token scale: {scale:.4f} (mean final context {mean_final:,.0f} -> {mean_final * scale:,.0f} tokens; "
          f"model context {cal['max_context']}); tool time scale {tool_scale:.4f} (tool times above are scaled)")
    print(f"calibration: {cal['tokens_per_word']:.3f} tokens/word, forced call >= {cal['call_tokens']} tokens, "
          f"prefill {cal['prefill_tps']:,.0f} tok/s, decode {cal['decode_tps']:,.0f} tok/s (batch 1), "
          f"{cal['bytes_per_token']:.0f} KV bytes/token")
    print(f"engine time per program: {s_recompute:.2f} s if every turn re-prefills, {s_reuse:.2f} s if none does; "
          f"rates {rates} programs/s = utilization {[round(r * s_recompute, 2) for r in rates]} (re-prefill) / "
          f"{[round(r * s_reuse, 2) for r in rates]} (reuse); expected active programs "
          f"{[round(r * jct0, 1) for r in rates]} (JCT without queueing {jct0:.1f} s)")

    per_rate = {}
    for rate in rates:  # the same arrivals and text for every policy and rep at one rate
        arr_rng, text_rng = random.Random(a.seed * 7919 + int(rate * 1e4)), random.Random(a.seed)
        t, progs = 0.0, []
        for i, turns in enumerate(raw):
            progs.append(Program(i, turns, t, scale, cal, max_ctx, text_rng))
            t += arr_rng.expovariate(rate)
        per_rate[rate] = progs
    clamped = sum(p.clamped for p in per_rate[rates[0]])
    pool_tokens_est = a.kv_bytes / cal["bytes_per_token"]
    mean_ctx = statistics.mean(p.context for p in per_rate[rates[0]])
    print(f"memory pressure: --kv-cache-bytes {a.kv_bytes} holds {pool_tokens_est:,.0f} tokens = "
          f"{pool_tokens_est / mean_ctx:.1f} programs at the mean final context ({mean_ctx:,.0f} tokens); "
          f"active programs per run are measured below ({clamped} programs shrunk to fit the model's context)")
    if "continuum+host" in policies:
        print(f"host tier for continuum+host: --host-kv-bytes {host_bytes}")

    runs = []
    for rep in range(a.reps):
        for rate in rates:
            for policy in policies:
                tag = f"r{rep}-{rate}-{policy.replace(':', '_').replace('+', '_')}"
                t0 = time.time()
                row = run_one(a, cal["model"], home, policy, rate, per_rate[rate], tag, host_bytes)
                row["rep"] = rep
                runs.append(row)
                print(f"  rep {rep} rate {rate} {policy}: mean JCT {row['jct_mean_s']:.2f} s, "
                      f"{row['completed']}/{row['programs']} programs, {time.time() - t0:.0f} s wall, "
                      f"load {loadavg()[0]}", file=sys.stderr)
                if row["errors"]:
                    print(f"    errors: {row['errors'][:3]}", file=sys.stderr)

    def med(rows, key):
        v = [r[key] for r in rows if r[key] is not None and not (isinstance(r[key], float) and math.isnan(r[key]))]
        return statistics.median(v) if v else None
    keys = ["jct_mean_s", "jct_p50_s", "jct_p95_s", "makespan_s", "tokens_recomputed",
            "tokens_prefilled_after_turn0", "ttft_mean_ms", "overhead_pct", "active_mean", "active_peak"]
    table = []
    for rate in rates:
        for policy in policies:
            rs = [r for r in runs if r["rate"] == rate and r["policy"] == policy]
            row = {"policy": policy, "rate": rate, **{k: med(rs, k) for k in keys},
                   "completed": min(r["completed"] for r in rs), "programs": rs[0]["programs"],
                   "forced_call_missed": sum(r["forced_call_missed"] for r in rs),
                   "pool_programs": (rs[0]["pool_tokens"] or pool_tokens_est) / mean_ctx}
            table.append(row)

    def f(x, nd=2):
        return "n/a" if x is None else f"{x:,.{nd}f}"
    print("\n| policy | rate /s | done | mean JCT s | p50 s | p95 s | makespan s | recomputed tok | prefilled tok "
          "(turns>0) | mean TTFT ms | sched+policy % of step | active mean (peak) | pool fits |")
    print("|" + "---|" * 13)
    for r in table:
        print(f"| {r['policy']} | {r['rate']:g} | {r['completed']}/{r['programs']} | {f(r['jct_mean_s'])} | "
              f"{f(r['jct_p50_s'])} | {f(r['jct_p95_s'])} | {f(r['makespan_s'])} | {f(r['tokens_recomputed'], 0)} | "
              f"{f(r['tokens_prefilled_after_turn0'], 0)} | {f(r['ttft_mean_ms'], 1)} | {f(r['overhead_pct'])} | "
              f"{f(r['active_mean'], 1)} ({f(r['active_peak'], 0)}) | {f(r['pool_programs'], 1)} |")

    ratios = []
    for rate in rates:
        by = {r["policy"]: r for r in table if r["rate"] == rate}
        for cont in ("continuum", "continuum+host"):
            if cont not in by or not by[cont]["jct_mean_s"]:
                continue
            for base in ("none", "fixed:2"):
                if base in by and by[base]["jct_mean_s"]:
                    ratios.append({"rate": rate, "baseline": base, "policy": cont,
                                   "ratio": by[base]["jct_mean_s"] / by[cont]["jct_mean_s"]})
    targets = {"none": 2.5, "fixed:2": 1.3}
    if ratios:
        print("\n| rate /s | mean JCT ratio | measured | target (swe, highest rate) | result |")
        print("|---|---|---|---|---|")
        for x in ratios:
            applies = a.workload == "swe" and x["rate"] == max(rates)
            tgt = targets[x["baseline"]]
            x["target"] = tgt if applies else None
            x["pass"] = (x["ratio"] >= tgt) if applies else None
            print(f"| {x['rate']:g} | {x['baseline']} / {x['policy']} | {x['ratio']:.2f}x | "
                  f"{'>= %.1fx' % tgt if applies else '-'} | "
                  f"{('PASS' if x['pass'] else 'MISS') if applies else '-'} |")
    else:
        print("\nratios: n/a (needs continuum and a baseline in the same run)")
    ovh = [r["overhead_pct"] for r in table if r["overhead_pct"] is not None]
    print(f"sched+policy overhead: {'%.3f%% max' % max(ovh) if ovh else 'n/a (no step/policy time in /metrics)'}"
          f" (target <= 2% of a step){'' if not ovh else ' PASS' if max(ovh) <= 2 else ' MISS'}")

    names = sorted({k for r in runs for k in r["retention_metrics"]})
    if names:
        print("\nretention metrics at the end of each run (rep 0):")
        for r in runs:
            if r["rep"] == 0:
                print(f"  {r['policy']} @ {r['rate']:g}: " +
                      ", ".join(f"{k}={r['retention_metrics'][k]:g}" for k in names if k in r["retention_metrics"]))
    missed = sum(r["forced_call_missed"] for r in table)
    if missed:
        print(f"forced tool calls that did not complete: {missed} (those turns went on as user turns)")
    print(f"\nload average after: {loadavg()}")
    result = {"workload": a.workload, "source": source, "token_scale": scale, "tool_time_scale": tool_scale, "rates": rates, "reps": a.reps,
              "programs": a.programs, "policies": policies, "skipped": skipped, "kv_cache_bytes": a.kv_bytes,
              "host_kv_bytes": host_bytes if "continuum+host" in policies else None,
              "pool_programs": pool_tokens_est / mean_ctx, "mean_context_tokens": mean_ctx,
              "calibration": {k: v for k, v in cal.items() if k != "model"},
              "engine_s_per_program": {"recompute": s_recompute, "reuse": s_reuse},
              "table": table, "ratios": ratios, "runs": runs, "mnemod": a.mnemod,
              "stream": a.stream, "continuum_fields": a.continuum_fields,
              "loadavg_before_after": [load_before, loadavg()]}
    pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(a.json).write_text(json.dumps(result, indent=1))
    print(f"wrote {a.json}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
