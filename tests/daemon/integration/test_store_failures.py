"""The store failing under mnemod: a full disk (a 2 MB tmpfs) and a damaged
mnemo.db. A full disk gives clear storage errors, never strands a session
(no `busy` afterwards), keeps reads answering, and lifts without a restart
once space returns; nothing acknowledged is lost. A damaged file stops
mnemod at startup with the way forward, and --repair takes it."""
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import MNEMOD, Daemon
from wsclient import Conn, new_session


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs; skipped where mounting is not allowed."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path):
    """Writes a file until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (65536, 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


async def append(c, sid, content):
    return await c.rpc({"type": "message.append", "session_id": sid,
                        "message": {"role": "user", "content": content}})


async def respond(c, sid):
    """response.create; returns (response.created or error, response.done or None)."""
    eid = await c.send({"type": "response.create", "session_id": sid, "sampling": {"max_tokens": 3}})
    first = None
    while True:
        m = await c.recv()
        if m.get("event_id") not in (None, eid) and m.get("type") != "response.done":
            continue
        if m["type"] == "error":
            return m, None
        if m["type"] == "response.created":
            first = m
        if m["type"] == "response.done":
            return first, m


def test_full_disk_gives_clear_errors_frees_the_session_and_recovers(model_dir, tmp_path, tiny_disk):
    d = Daemon(tiny_disk, model_dir)
    d.log = tmp_path / "mnemod.log"  # not on the disk that fills up
    d.start()
    acked = {}  # index -> content, as acknowledged
    try:
        async def before_full():
            c = await Conn.open(d.ws)
            sid = await new_session(c)
            m = await append(c, sid, "first")
            assert m["type"] == "message.appended", m
            acked[m["indices"][0]] = "first"
            await c.close()
            return sid
        sid = run(before_full())

        filler = tiny_disk / "filler"
        fill(filler)

        async def while_full():
            c = await Conn.open(d.ws)
            # The WAL may still have room: write until the store says full,
            # big messages first, then small ones (so a small write fails too).
            errors = []
            for size in (8192, 64):
                for i in range(400):
                    text = f"{size}/{i}:" + "x" * size
                    m = await append(c, sid, text)
                    if m["type"] == "error":
                        errors.append(m)
                        break
                    acked[m["indices"][0]] = text
            assert len(errors) == 2, errors
            for e in errors:
                assert e["code"] == "storage_full", e
                assert e["message"].startswith("the store is full: nothing was saved"), e

            # A response that cannot be stored still ends, and says why.
            created, done = await respond(c, sid)
            assert created["type"] == "response.created", created
            assert done is not None and done["finish_reason"] == "error", done
            assert done["error"]["code"] == "storage_full", done
            assert "the response was not saved" in done["error"]["message"], done
            assert "index" not in done["message"]

            # The session is not stuck: the next events get the storage error, not busy.
            m = await append(c, sid, "still full")
            assert m["type"] == "error" and m["code"] == "storage_full", m
            created, done = await respond(c, sid)
            assert created["type"] == "response.created" and done["finish_reason"] == "error", (created, done)

            # Reads keep answering.
            listed = await c.rpc({"type": "session.list"})
            assert listed["type"] == "session.listed" and [s["id"] for s in listed["sessions"]] == [sid], listed
            assert listed["sessions"][0]["message_count"] == len(acked)
            await c.close()
        run(while_full())
        assert d.request("GET", "/healthz")[0] == 200
        # HTTP: a completion that needs no bookkeeping still runs; one whose
        # Continuum turn cannot be recorded gets 507 in OpenAI's error shape.
        chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert d.request("POST", "/v1/chat/completions", chat)[0] == 200
        st, body = d.request("POST", "/v1/chat/completions", {**chat, "job_id": "job-full"})
        assert st == 507, body
        assert json.loads(body)["error"]["code"] == "storage_full", body

        # Space returns: the same daemon and session take writes again.
        filler.unlink()

        async def after_full():
            c = await Conn.open(d.ws)
            m = await append(c, sid, "after")
            assert m["type"] == "message.appended", m
            acked[m["indices"][0]] = "after"
            created, done = await respond(c, sid)
            assert created["type"] == "response.created", created
            assert done["finish_reason"] in ("stop", "length"), done
            assert done["message"]["index"] == len(acked)
            await c.close()
            return done["message"]["index"]
        assistant_index = run(after_full())
        assert d.stop() == 0

        # Nothing acknowledged was lost, and nothing unacknowledged was kept.
        db = sqlite3.connect(tiny_disk / "mnemo.db")
        rows = db.execute("SELECT seq, role, content FROM messages WHERE session_id = ? ORDER BY seq",
                          (sid,)).fetchall()
        db.close()
        users = {seq - 1: content for seq, role, content in rows if role == "user"}
        assert users == acked
        assert [seq - 1 for seq, role, _ in rows if role == "assistant"] == [assistant_index]

        # And a restart sees it all.
        d.start()
        async def after_restart():
            c = await Conn.open(d.ws)
            listed = await c.rpc({"type": "session.list"})
            assert listed["sessions"][0]["message_count"] == len(acked) + 1
            await c.close()
        run(after_restart())
    finally:
        d.stop(signal.SIGKILL)


def damage_a_messages_page(db_path):
    """Overwrites the b-tree header of a leaf page of `messages` in the middle."""
    db = sqlite3.connect(db_path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = [p for (p,) in db.execute(
        "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf' ORDER BY path")]
    db.close()
    assert len(pages) >= 3, pages
    with open(db_path, "r+b") as f:
        f.seek((pages[len(pages) // 2] - 1) * page_size)
        f.write(b"\xa5" * 64)


def test_damaged_store_is_refused_then_repaired(model_dir, tmp_path):
    data = tmp_path / "data"
    d = Daemon(data, model_dir)
    d.start()

    async def populate():
        c = await Conn.open(d.ws)
        ids = []
        for s in range(3):
            sid = await new_session(c)
            for i in range(25):
                m = await append(c, sid, f"s{s} m{i} " + "y" * 300)
                assert m["type"] == "message.appended", m
            ids.append(sid)
        await c.close()
        return ids
    ids = run(populate())
    assert d.stop() == 0  # closes the store: the WAL is checkpointed into mnemo.db
    db_path = data / "mnemo.db"
    damage_a_messages_page(db_path)

    # Refused at startup with one clear message and a non-zero exit.
    started = time.time()
    r = subprocess.run(d.args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r
    assert str(db_path) in r.stderr and "is damaged" in r.stderr and "--repair" in r.stderr, r.stderr
    assert "mnemod listening" not in r.stdout
    assert time.time() - started < 30
    assert not list(data.glob("mnemo.db.damaged-*"))

    # --repair keeps the damaged file, recovers the rest, and serves.
    d.args.append("--repair")
    d.start()
    try:
        assert len(list(data.glob("mnemo.db.damaged-*"))) == 1
        log = d.log.read_text()
        assert "rows recovered" in log, log

        async def check():
            c = await Conn.open(d.ws)
            listed = await c.rpc({"type": "session.list"})
            assert [s["id"] for s in listed["sessions"]] == ids, listed
            counts = [s["message_count"] for s in listed["sessions"]]
            assert 0 < sum(counts) < 75, counts  # one page of messages is gone, the rest is back
            # Writes work on the repaired file.
            m = await append(c, ids[0], "after repair")
            assert m["type"] == "message.appended", m
            await c.close()
        run(check())
    finally:
        d.stop(signal.SIGKILL)
