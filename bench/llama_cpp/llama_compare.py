#!/usr/bin/python3
"""Mnemo's CPU engine side by side with llama.cpp (issue 16): decode, prefill and long-context
decode, BF16 and Q8_0, at 1 and 2 threads, on generated Llama models, interleaved A B A B.

  /usr/bin/python3 bench/llama_cpp/llama_compare.py --setup        # once: npm pack + build (~25 min)
  /usr/bin/python3 bench/llama_cpp/llama_compare.py --mnemo build/mnemo --models 123M --rounds 3

See bench/README.md ("llama_cpp/llama_compare.py"). Python standard library; the GGUF conversion
runs llama.cpp's converter under /usr/bin/python3 (torch, numpy) through convert.py.
"""
import argparse
import hashlib
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_llama  # noqa: E402
import measure  # noqa: E402

REPO = HERE.parents[1]
COMMON = ["--vocab", "32000", "--dtype", "bf16", "--max-position", "8192"]  # 4096 + decode fits
# mnemo model new shapes; the seeds are bench/engine_bench.cc's.
MODELS = {
    "123M": ["--hidden", "768", "--layers", "12", "--heads", "12", "--kv-heads", "12", "--intermediate", "2048",
             "--seed", "2"] + COMMON,
    "1.1B": ["--hidden", "2048", "--layers", "22", "--heads", "32", "--kv-heads", "4", "--intermediate", "5632",
             "--seed", "1"] + COMMON,
    "tiny": ["--vocab", "2048", "--max-position", "8192"],  # mnemo's default shape: a smoke run in seconds
}
KINDS = ["decode", "decode_q8", "prefill", "decode_ctx"]
WORDS = ("the of and to in is was for on that with as by at from his her an which are were be this had not "
         "but it they their or have one all she there been has when who more if will would no out so said "
         "what up its about than into them can only other new some could time these two may then do first any "
         "my now such like our over man me even most made after also did many before must through back years "
         "where much your way well down should because each just those people how too little state good very "
         "make world still own see men work long get here between both life being under never day same another "
         "know while last might us great old year off come since against go came right used take three river "
         "music garden window silver morning number system market paper question history science letter").split()


def log(msg):
    print(msg, flush=True)


def loadavg():
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def run(cmd, timeout=3600, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


# ---------------------------------------------------------------- models, GGUF, prompts

def prepare_model(args, name):
    """The generated model, a view of it for mnemo run, and its BF16 / Q8_0 GGUFs."""
    root = args.work / "models"
    hf = root / name
    if not (hf / "config.json").exists():
        log(f"generating the {name} model: mnemo model new --out {hf} {' '.join(MODELS[name])}")
        r = run([args.mnemo, "model", "new", "--out", hf] + MODELS[name])
        if r.returncode:
            raise SystemExit(f"mnemo model new failed: {r.stderr}")
    # mnemo run stops at an EOS token; llama-bench generates its n tokens whatever they are. The view
    # is the same model (weights and tokenizer linked) whose config.json names no EOS, so both
    # decode exactly the tokens asked for.
    view = root / f"{name}.no-eos"
    view.mkdir(parents=True, exist_ok=True)
    for f in hf.iterdir():
        if f.name != "config.json" and not (view / f.name).exists():
            (view / f.name).symlink_to(f.resolve())
    cfg = json.loads((hf / "config.json").read_text())
    cfg.pop("eos_token_id", None)
    (view / "config.json").write_text(json.dumps(cfg, indent=2))

    gguf = {}
    bf16 = root / f"{name}-bf16.gguf"
    if not bf16.exists():
        log(f"converting {hf} to {bf16} with llama.cpp's convert_hf_to_gguf.py")
        r = run(["/usr/bin/python3", HERE / "convert.py", args.cache / "src", hf, "--outfile", f"{bf16}.tmp",
                 "--outtype", "bf16"])
        if r.returncode:
            raise SystemExit(f"conversion failed:\n{r.stderr[-3000:]}")
        os.replace(f"{bf16}.tmp", bf16)
    gguf["bf16"] = bf16
    q8 = root / f"{name}-q8_0.gguf"
    if "decode_q8" in args.rows and not q8.exists():
        log(f"quantizing {bf16} to {q8} with llama-quantize")
        r = run(["nice", "-n", "19", build_llama.binary(args.cache, "llama-quantize"), bf16, f"{q8}.tmp", "Q8_0"])
        if r.returncode:
            raise SystemExit(f"llama-quantize failed:\n{r.stderr[-3000:]}")
        os.replace(f"{q8}.tmp", q8)
    gguf["q8_0"] = q8
    st = {}
    for part in sorted(hf.glob("*.safetensors")):
        st.update(measure.safetensors_header(part))
    return {"name": name, "hf": hf, "view": view, "gguf": gguf, "config": cfg, "tensors": st}


def tokenize(args, model_dir, text):
    r = run([args.mnemo, "tokenize", "--model", model_dir, "--text", text, "--special"])
    if r.returncode:
        raise SystemExit(f"mnemo tokenize failed: {r.stderr}")
    return json.loads(r.stdout)


def make_prompt(args, model, n):
    """Text that mnemo encodes to exactly n tokens (BOS included), cached per tokenizer and n."""
    tok_hash = hashlib.sha256((model["hf"] / "tokenizer.json").read_bytes()).hexdigest()[:12]
    path = args.work / "prompts" / f"{tok_hash}-{n}.txt"
    if path.exists():
        return path.read_text()
    rng = random.Random(n)
    text = " ".join(rng.choice(WORDS) for _ in range(n * 2))
    ids = tokenize(args, model["view"], text)
    k = n - 1
    for _ in range(20):
        r = run([args.mnemo, "detokenize", "--model", model["view"], "--ids", ",".join(map(str, ids[1:k + 1])),
                 "--skip-special"])
        cand = r.stdout.rstrip("\n")
        got = len(tokenize(args, model["view"], cand))
        if got == n:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cand)
            return cand
        k += n - got
    raise SystemExit(f"could not build a prompt of exactly {n} tokens")


# ---------------------------------------------------------------- the cases

def cases_for(args, model, mnemo_kv):
    """One entry per row of the table: what each side runs and what decode reads per token."""
    out = []
    for kind in args.rows:
        for t in args.threads:
            c = {"kind": kind, "model": model["name"], "threads": t, "mnemo_extra": [], "gguf": "bf16",
                 "llama_extra": args.llama_extra.split()}
            if kind in ("decode", "decode_q8"):
                c.update(row="decode" + (" Q8_0" if kind == "decode_q8" else " BF16"), prompt=args.decode_prompt,
                         n_decode=args.decode, llama=["-p", "0", "-n", args.decode])
                if kind == "decode_q8":
                    c.update(gguf="q8_0", mnemo_extra=["--weights-dtype", "q8_0"])
            elif kind == "prefill":
                c.update(row=f"prefill {args.prefill}", prompt=args.prefill, n_decode=1,
                         llama=["-p", args.prefill, "-n", "0"])
            else:
                c.update(row=f"decode at {args.depth} ctx", prompt=args.depth, n_decode=args.decode,
                         llama=["-p", "0", "-n", args.decode, "-d", args.depth, "-fa", args.llama_fa])
            if kind != "prefill":
                wdt = "q8_0" if kind == "decode_q8" else None
                c["mnemo_bytes"] = measure.decode_bytes_per_token(
                    measure.decode_weight_bytes(model["tensors"], wdt), model["config"], mnemo_kv, c["prompt"],
                    c["n_decode"])
            out.append(c)
    return out


def mnemo_cmd(args, model, case, prompts, *flags):
    """`mnemo run` for one row: its prompt, threads and tokens, greedy, plus flags."""
    return [args.mnemo, "run", "--model", model["view"], "--prompt", prompts[case["prompt"]], "--threads",
            case["threads"], "--max-tokens", case["n_decode"], "--temperature", "0", *flags] + case["mnemo_extra"]


def mnemo_run(args, model, case, prompts):
    r = run(mnemo_cmd(args, model, case, prompts, "--stats"))
    st = measure.parse_mnemo_stats(r.stderr)
    if r.returncode or not st:
        return None, (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
    if case["kind"] == "prefill":
        return st["prefill_tps"], st
    if st["generated_tokens"] != case["n_decode"]:
        return None, f"generated {st['generated_tokens']} of {case['n_decode']} tokens"
    return st["decode_tps"], st


def mnemo_profile(args, model, case, prompts, peak_gbps):
    """Where Mnemo's time goes in a row: one `mnemo run --profile` of the row's command, the table
    of its phase (per-operation ms, GB/s, GFLOP/s, % of the triad peak)."""
    peak = ["--peak-gbps", f"{peak_gbps:.1f}"] if peak_gbps else []
    r = run(mnemo_cmd(args, model, case, prompts, "--profile", *peak))
    return measure.profile_section(r.stderr, "prefill" if case["kind"] == "prefill" else "decode")


def llama_run(args, model, case):
    cmd = [build_llama.binary(args.cache, "llama-bench"), "-m", model["gguf"][case["gguf"]], "-t", case["threads"],
           "-r", "1", "-o", "json"] + case["llama"] + case["llama_extra"]
    r = run(cmd)
    if r.returncode:
        return None, (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
    tests = measure.parse_llama_bench_json(r.stdout)
    tps, best = measure.best_llama_tps(tests)
    return tps, {"tests": tests, "best": best}


def triad(args):
    """STREAM triad GB/s at 1 and 2 threads (bench/membw.h; --triad: the median of its repeats, as
    DESIGN.md's targets, or the best, steadier when neighbours load the machine), or {} without
    mnemo_membw."""
    if not args.membw or not pathlib.Path(args.membw).exists():
        return {}
    out = args.work / "membw.json"
    r = run([args.membw, "--json", out, "--mib", str(args.membw_mib)])
    if r.returncode:
        return {}
    rows = json.loads(out.read_text())["bandwidth"]
    return {int(x["threads"]): float(x[f"{args.triad} GB/s"]) for x in rows if x["kernel"] == "triad"}


def mnemo_kv_dtype(args):
    """The KV dtype the roofline counts for Mnemo: --mnemo-kv-dtype, else the default that
    `mnemo run --help` states for a KV dtype flag, else F32 (the engine before issue 16)."""
    if args.mnemo_kv_dtype != "auto":
        return args.mnemo_kv_dtype
    h = run([args.mnemo, "run", "--help"]).stdout
    m = re.search(r"--kv[-\w]*dtype[^\n]*\(default: (\w+)\)", h)
    return m.group(1).lower() if m and m.group(1).lower() in measure.KV_BYTES else "f32"


# ---------------------------------------------------------------- run, summarise, report

def summarise(case, rounds):
    """Medians, min and max over rounds; ratios and roofline shares per round, then summarised."""
    m = [x["mnemo"] for x in rounds]
    l = [x["llama"] for x in rounds]
    ratio = [a / b if a and b else None for a, b in zip(m, l)]
    row = {k: case[k] for k in ("kind", "row", "model", "threads")}
    row.update(mnemo=measure.summary(m), llama=measure.summary(l), ratio=measure.summary(ratio),
               rounds=rounds)
    if case["kind"] != "prefill":
        t = case["threads"]
        row["mnemo_bytes_per_token"] = case["mnemo_bytes"]
        row["mnemo_roofline"] = measure.summary(
            [measure.roofline_share(x["mnemo"], case["mnemo_bytes"], x["triad"].get(t)) for x in rounds])
        row["llama_roofline"] = measure.summary(
            [measure.roofline_share(x["llama"], x.get("llama_bytes"), x["triad"].get(t)) for x in rounds])
        row["mnemo_gbps"] = measure.summary([x["mnemo"] * case["mnemo_bytes"] / 1e9 if x["mnemo"] else None
                                             for x in rounds])
    share = row.get("mnemo_roofline")
    row["verdict"] = measure.verdict(case["kind"], row["ratio"]["median"] if row["ratio"] else None,
                                     share["median"] if share else None)
    return row


def llama_bytes(model, case, info):
    """What llama.cpp's decode reads per token, from the test it ran (its KV type, Q8_0 or BF16)."""
    if case["kind"] == "prefill" or not info:
        return None
    wdt = "q8_0" if case["gguf"] == "q8_0" else None
    kv = (info["best"].get("type_k") or "f16").lower()
    depth = info["best"]["n_depth"]
    return measure.decode_bytes_per_token(measure.decode_weight_bytes(model["tensors"], wdt), model["config"],
                                          kv if kv in measure.KV_BYTES else "f16", depth, case["n_decode"])


def write_report(args, cases, results, skipped, round_info, setup_meta, kv, t0, profiles=None):
    """Summarises the rounds so far into rows (with the profiles of missed rows, by case id) and
    writes the JSON; returns the (case, row) pairs."""
    rows = []
    for c in cases:
        if id(c) in skipped:
            rows.append((c, {k: c[k] for k in ("kind", "row", "model", "threads")} | {"skipped": skipped[id(c)]}))
        elif results[id(c)]:
            rows.append((c, summarise(c, results[id(c)])))
            if profiles and id(c) in profiles:
                rows[-1][1]["profile"] = profiles[id(c)]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "llama_cpp": setup_meta, "mnemo": str(args.mnemo), "mnemo_kv_dtype": kv, "rounds": round_info,
        "loadavg_now": loadavg(), "seconds": time.time() - t0, "rows": [r for _, r in rows],
        "settings": {k: v for k, v in vars(args).items() if isinstance(v, (int, str, list))}},
        indent=1, default=str))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setup", action="store_true", help="fetch and build llama.cpp into --cache, then exit")
    ap.add_argument("--jobs", type=int, default=2, help="build jobs for --setup")
    ap.add_argument("--cache", type=pathlib.Path, default=build_llama.default_cache(),
                    help="llama.cpp cache (env MNEMO_LLAMA_CACHE; default ~/.cache/mnemo/llama.cpp)")
    ap.add_argument("--work", type=pathlib.Path, help="models, GGUFs and prompts (default CACHE/work)")
    ap.add_argument("--mnemo", type=pathlib.Path, default=REPO / "build" / "mnemo")
    ap.add_argument("--membw", type=pathlib.Path, help="mnemo_membw (default: bench/mnemo_membw beside --mnemo)")
    ap.add_argument("--membw-mib", type=int, default=128, help="MiB per triad array")
    ap.add_argument("--triad", choices=["median", "best"], default="median",
                    help="which triad GB/s of each round is the roofline")
    ap.add_argument("--models", default="123M,1.1B", help=f"comma-separated, of {','.join(MODELS)}")
    ap.add_argument("--rows", default=",".join(KINDS), help=f"comma-separated, of {','.join(KINDS)}")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--decode", type=int, default=128, help="tokens decoded per decode run")
    ap.add_argument("--decode-prompt", type=int, default=8, help="prompt tokens before a plain decode run")
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--depth", type=int, default=4096, help="context of the long-context decode row")
    ap.add_argument("--llama-fa", default="0,1",
                    help="llama-bench -fa for the long-context row; the faster setting of each run counts")
    ap.add_argument("--llama-extra", default="",
                    help="more llama-bench flags for every run, e.g. '--poll 0' (workers sleep instead of spinning)")
    ap.add_argument("--mnemo-kv-dtype", default="auto", choices=["auto"] + list(measure.KV_BYTES),
                    help="KV dtype Mnemo's roofline counts (auto: from mnemo run --help, else f32)")
    ap.add_argument("--json", type=pathlib.Path, help="default: bench/llama_compare.json beside --mnemo")
    ap.add_argument("--table-from", type=pathlib.Path, help="print the table of an earlier run's JSON and exit")
    args = ap.parse_args()

    if args.table_from:
        j = json.loads(args.table_from.read_text())
        print(measure.table(j["rows"]))
        print(f"\nload average before each round: {', '.join(x['loadavg_before'] for x in j['rounds'])}")
        return 0

    args.cache = args.cache.expanduser().resolve()
    if args.setup:
        build_llama.setup(args.cache, args.jobs)
        return 0
    if not build_llama.is_built(args.cache):
        raise SystemExit(f"llama.cpp is not built in {args.cache}: run with --setup first (~25 minutes)")
    args.mnemo = args.mnemo.resolve()
    if not args.mnemo.exists():
        raise SystemExit(f"no mnemo binary at {args.mnemo} (--mnemo)")
    args.work = (args.work or args.cache / "work").resolve()
    args.membw = args.membw or args.mnemo.parent / "bench" / "mnemo_membw"
    args.json = args.json or args.mnemo.parent / "bench" / "llama_compare.json"
    args.rows = [r for r in args.rows.split(",") if r]
    args.threads = [int(t) for t in args.threads.split(",")]
    for r in args.rows:
        if r not in KINDS:
            raise SystemExit(f"unknown row {r}; rows: {KINDS}")

    kv = mnemo_kv_dtype(args)
    q8_ok = "--weights-dtype" in run([args.mnemo, "run", "--help"]).stdout
    models, cases, prompts = {}, [], {}
    for name in args.models.split(","):
        m = models[name] = prepare_model(args, name)
        prompts[name] = {n: make_prompt(args, m, n) for n in {args.decode_prompt, args.prefill, args.depth}}
        cases += cases_for(args, m, kv)
    skipped = {}
    if not q8_ok:
        for c in cases:
            if c["kind"] == "decode_q8":
                skipped[id(c)] = "mnemo run has no --weights-dtype"
    setup_meta = json.loads((args.cache / "setup.json").read_text()) if (args.cache / "setup.json").exists() else {}
    log(f"llama.cpp: {setup_meta.get('package')} {setup_meta.get('llama_cpp')} commit {setup_meta.get('commit')}")
    log(f"mnemo: {args.mnemo}; KV dtype counted in Mnemo's roofline: {kv}")

    results = {id(c): [] for c in cases}
    round_info = []
    t0 = time.time()
    for r in range(args.rounds):
        la = loadavg()
        bw = triad(args)
        round_info.append({"round": r + 1, "loadavg_before": la, "triad_gbps": bw})
        log(f"round {r + 1}/{args.rounds}: load average {la}; triad GB/s {bw}")
        for c in cases:
            if id(c) in skipped:
                continue
            model = models[c["model"]]
            mt, mi = mnemo_run(args, model, c, prompts[c["model"]])
            if mt is None and c["kind"] == "decode_q8" and "weights-dtype" in str(mi):
                skipped[id(c)] = f"mnemo refused --weights-dtype q8_0: {mi}"
                log(f"  {c['row']} {c['model']} {c['threads']}t: skipped ({skipped[id(c)]})")
                continue
            lt, li = llama_run(args, model, c)
            results[id(c)].append({"round": r + 1, "mnemo": mt, "llama": lt, "triad": bw,
                                   "llama_bytes": llama_bytes(model, c, li if lt else None),
                                   "mnemo_info": mi, "llama_info": li})
            ratio = f"{mt / lt:.2f}" if mt and lt else "-"
            log(f"  {c['row']:<20} {c['model']:>5} {c['threads']}t: Mnemo {mt if mt is None else round(mt, 1)}"
                f"  llama.cpp {lt if lt is None else round(lt, 1)}  ratio {ratio}"
                + ("" if mt else f"  (Mnemo: {mi})") + ("" if lt else f"  (llama.cpp: {li})"))
            # Rewritten after every measurement, so an interrupted run keeps what it has (--table-from).
            write_report(args, cases, results, skipped, round_info, setup_meta, kv, t0)
    print()
    rows = write_report(args, cases, results, skipped, round_info, setup_meta, kv, t0)
    print(measure.table([r for _, r in rows]))
    # Where a target is missed, where Mnemo's time goes: one profiled run of that row.
    if "--profile" in run([args.mnemo, "run", "--help"]).stdout:
        profiles = {}
        for c, row in rows:
            if row.get("verdict") != "MISS":
                continue
            peak = (round_info[-1]["triad_gbps"] or {}).get(c["threads"])
            profiles[id(c)] = mnemo_profile(args, models[c["model"]], c, prompts[c["model"]], peak)
            print(f"\n{c['row']}, {c['model']}, {c['threads']} thread(s): MISS; Mnemo's time by operation "
                  f"(mnemo run --profile; % peak: of the triad, {peak or '-'} GB/s):")
            print("\n".join(profiles[id(c)]) or "(no profile output)")
        write_report(args, cases, results, skipped, round_info, setup_meta, kv, t0, profiles)
    print(f"\nload average before each round: {', '.join(x['loadavg_before'] for x in round_info)}; "
          f"after: {loadavg()}")
    print("tok/s: median (min-max) over rounds; ratio = Mnemo / llama.cpp per round; roofline = tok/s x bytes "
          f"read per token / STREAM triad (Mnemo's KV counted as {kv}, llama.cpp's as its type_k)")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
