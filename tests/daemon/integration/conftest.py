"""Starts real mnemod processes on ephemeral loopback ports for the tests.

MNEMOD names the binary (ctest sets it). One built-in model is generated per
test session and shared; each daemon gets its own data dir unless a test
restarts one on the same dir.
"""
import json
import os
import pathlib
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

MNEMOD = os.environ.get("MNEMOD", "")
START_TIMEOUT = 60


class Daemon:
    def __init__(self, data_dir, model_dir, *extra):
        self.data_dir = pathlib.Path(data_dir)
        self.args = [MNEMOD, "--port", "0", "--data-dir", str(data_dir), "--model", str(model_dir),
                     "--threads", "1", "--kv-cache-bytes", "64M", *extra]
        self.proc = None
        self.port = None
        self.log = self.data_dir / "mnemod.log"

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=open(self.log, "ab"), text=True)
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("mnemod listening on "):
                    self.port = int(line.rsplit(":", 1)[1])
                    return self
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"mnemod did not start; its log:\n{self.log.read_text()}")

    @property
    def http(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self):
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def request(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.http + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    if not MNEMOD or not os.path.exists(MNEMOD):
        pytest.skip("MNEMOD is not set to a built mnemod binary")
    home = tmp_path_factory.mktemp("home")
    # The first start generates the built-in model into its data dir.
    d = Daemon(home, "unused")
    d.args = [MNEMOD, "--port", "0", "--data-dir", str(home), "--threads", "1", "--kv-cache-bytes", "64M"]
    d.start()
    d.stop()
    return home / "models" / "default"


@pytest.fixture
def daemon_factory(model_dir, tmp_path):
    started = []

    def make(*extra, data_dir=None):
        d = Daemon(data_dir or tmp_path / f"data{len(started)}", model_dir, *extra)
        started.append(d)
        return d.start()

    yield make
    # SIGTERM (SIGKILL after 30 s): mnemod then stops the tool servers it
    # started. A SIGKILL would orphan them (they run in their own process
    # groups) and leave them running after the test.
    for d in started:
        d.stop()


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()
