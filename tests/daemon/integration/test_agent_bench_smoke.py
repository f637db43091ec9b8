"""bench/agent_bench.py still runs end to end: --quick with the 'none' policy against
MNEMOD (a few seconds), and its JSON carries the fields the README documents."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import MNEMOD

BENCH = pathlib.Path(__file__).resolve().parents[3] / "bench" / "agent_bench.py"


def test_agent_bench_quick(tmp_path):
    if not MNEMOD or not os.path.exists(MNEMOD):
        pytest.skip("MNEMOD is not set to a built mnemod binary")
    out = tmp_path / "agent_bench.json"
    r = subprocess.run([sys.executable, str(BENCH), "--mnemod", MNEMOD, "--quick", "--policies", "none",
                        "--json", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| none |" in r.stdout and "load average after" in r.stdout
    j = json.loads(out.read_text())
    for key in ("workload", "token_scale", "rates", "kv_cache_bytes", "pool_programs", "calibration",
                "table", "ratios", "runs", "loadavg_before_after"):
        assert key in j, key
    row = j["table"][0]
    assert row["policy"] == "none" and row["completed"] == row["programs"] == 3
    for key in ("jct_mean_s", "jct_p50_s", "jct_p95_s", "makespan_s", "tokens_recomputed",
                "tokens_prefilled_after_turn0", "ttft_mean_ms", "overhead_pct", "active_mean"):
        assert key in row, key
    assert 0 < row["jct_p50_s"] <= row["jct_p95_s"] <= row["makespan_s"] + 1e-9
    assert j["runs"][0]["errors"] == [] and row["forced_call_missed"] == 0
