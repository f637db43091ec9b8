"""Fixtures: a real mnemod (from $MNEMOD) on an ephemeral loopback port, and async tests.

Tests that need the daemon skip when MNEMOD is unset or not a file. One
daemon serves the whole session (`daemon`); tests that restart it or need
other flags start their own (`start_daemon`). `async def` tests run under
asyncio.run with a time limit, so no plugin is needed.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

SDK_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = SDK_ROOT.parents[1]
sys.path.insert(0, str(SDK_ROOT))

ASYNC_TEST_LIMIT_S = 30.0

# Sampling for a response that is still running when the test cancels it: greedy decoding
# of the built-in model does not stop early, where sampling may end the turn at once.
LONG = {"max_tokens": 4000, "temperature": 0}
START_LIMIT_S = 30.0


class Daemon:
    """One mnemod process; `restart` keeps its port and data dir."""

    def __init__(self, binary: str, data_dir: Path, extra_args: list[str]) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.port = 0
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log_path = data_dir / "mnemod.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMO")}
        args = [self.binary, "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--sync", "process", *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_LIMIT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                self.stop()
                raise RuntimeError(f"mnemod did not start within {START_LIMIT_S} s; log: {self.log_tail()}")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                raise RuntimeError(f"mnemod exited with {self.proc.wait()}; log: {self.log_tail()}")
            line += chunk
        m = re.fullmatch(r"mnemod listening on http://127\.0\.0\.1:(\d+)", line.decode().strip())
        if not m:
            self.stop()
            raise RuntimeError(f"unexpected first line from mnemod: {line!r}")
        self.port = int(m.group(1))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"


@pytest.fixture(scope="session")
def mnemod_binary() -> str:
    path = os.environ.get("MNEMOD")
    if not path:
        pytest.skip("MNEMOD is not set: point it at a built mnemod binary (absolute path) to run daemon tests")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        pytest.skip(f"MNEMOD={path} is not an executable file")
    return path


@pytest.fixture(scope="session")
def daemon(mnemod_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(mnemod_binary, tmp_path_factory.mktemp("mnemod-shared"), [])
    d.start()
    yield d
    d.stop()


@pytest.fixture
def start_daemon(mnemod_binary: str, tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Starts a daemon of this test's own (fresh data dir), stopped when the test ends."""
    started: list[Daemon] = []

    def start(*extra_args: str) -> Daemon:
        data_dir = tmp_path / f"mnemod-{len(started)}"
        data_dir.mkdir()
        d = Daemon(mnemod_binary, data_dir, list(extra_args))
        started.append(d)
        d.start()
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture(autouse=True)
def _no_mnemo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's MNEMO_URL / MNEMO_API_KEY must not leak into tests."""
    monkeypatch.delenv("MNEMO_URL", raising=False)
    monkeypatch.delenv("MNEMO_API_KEY", raising=False)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), ASYNC_TEST_LIMIT_S))
    return True
