"""examples/python/agent.py runs against mnemod, and its second run resumes the first run's session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, Daemon

AGENT = REPO_ROOT / "examples" / "python" / "agent.py"


def run_agent(daemon: Daemon, state: Path, *args: str) -> str:
    env = {**os.environ, "MNEMO_URL": daemon.url}
    env.pop("MNEMO_API_KEY", None)
    done = subprocess.run([sys.executable, str(AGENT), "--state", str(state), "--max-tokens", "48",
                           "--max-turns", "2", *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_second_run_resumes_the_session(daemon: Daemon, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = run_agent(daemon, state)
    session_id = json.loads(state.read_text())["session_id"]
    assert f"Created new session {session_id}" in first
    assert "turn 1: " in first

    second = run_agent(daemon, state, "What did we compute?")
    assert f"Resumed session {session_id}" in second
    assert json.loads(state.read_text())["session_id"] == session_id
