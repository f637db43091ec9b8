"""Sessions survive restarts; a kill -9 loses nothing that was acknowledged."""
import asyncio
import random
import signal
import sqlite3

from wsclient import Conn, new_session, start_endless_response


def run(coro):
    return asyncio.run(coro)


def test_restart_lists_and_resumes_every_session(daemon_factory, tmp_path):
    data = tmp_path / "persist"
    d = daemon_factory(data_dir=data)

    async def before():
        c = await Conn.open(d.ws)
        ids = []
        for i in range(3):
            sid = await new_session(c, system=f"s{i}", sampling={"max_tokens": 3})
            await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": f"m{i}"}})
            ids.append(sid)
        await c.respond(ids[0])
        await c.close()
        return ids
    ids = run(before())
    assert d.stop() == 0  # SIGTERM: a clean exit

    d2 = daemon_factory(data_dir=data)

    async def after():
        c = await Conn.open(d2.ws)
        listed = await c.rpc({"type": "session.list"})
        assert [s["id"] for s in listed["sessions"]] == ids
        r = await c.rpc({"type": "session.resume", "session_id": ids[0]})
        assert r["type"] == "session.resumed" and r["session"]["message_count"] == 2
        assert r["session"]["system"] == "s0"
        done = (await c.respond(ids[0], sampling={"max_tokens": 2}))[-1]
        assert done["type"] == "response.done" and done["message"]["index"] == 2
        await c.close()
    run(after())


def test_kill_9_loses_no_acknowledged_message(daemon_factory, tmp_path):
    data = tmp_path / "crash"
    rng = random.Random(7)
    acked = {}  # session id -> contents acknowledged, in order
    for round_ in range(10):
        d = daemon_factory(data_dir=data)

        async def writers():
            async def writer(k):
                c = await Conn.open(d.ws)
                sid = await new_session(c)
                acked[sid] = []
                i = 0
                try:
                    while True:
                        text = f"r{round_}w{k}m{i}"
                        m = await c.rpc({"type": "message.append", "session_id": sid,
                                         "message": {"role": "user", "content": text}})
                        assert m["type"] == "message.appended"
                        acked[sid].append(text)
                        i += 1
                except Exception:
                    return  # the daemon died under us

            tasks = [asyncio.create_task(writer(k)) for k in range(4)]
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            d.proc.send_signal(signal.SIGKILL)
            await asyncio.gather(*tasks)
        run(writers())
        d.proc.wait()

    d = daemon_factory(data_dir=data)

    async def check():
        c = await Conn.open(d.ws)
        total = 0
        for sid, texts in acked.items():
            stored, before = [], {}
            while True:  # session.get pages the history, newest page first
                h = await c.rpc({"type": "session.get", "session_id": sid, "limit": 1000, **before})
                stored[:0] = [m["content"] for m in h["messages"]]
                if not h["has_more"]:
                    break
                before = {"before": h["messages"][0]["index"]}
            assert stored[:len(texts)] == texts, sid
            total += len(texts)
        await c.close()
        return total
    assert run(check()) > 20


def test_shutdown_ends_running_responses_then_exits_zero(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        await start_endless_response(c)
        await c.recv()
        daemon.proc.send_signal(signal.SIGTERM)
        last = None
        try:
            while True:
                last = await c.recv()
        except Exception:
            pass
        assert last is not None and last["type"] == "response.done" and last["finish_reason"] == "shutdown", last
        assert c.ws.close_code == 1001
    run(go())
    assert daemon.proc.wait(30) == 0


def test_continuum_fields_are_recorded(daemon):
    for step, last in enumerate([False, True]):
        st, _ = daemon.request("POST", "/v1/chat/completions", {
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
            "job_id": "job-42", "is_last_step": last, "this_func_call": "search" if not last else None,
            "vllm_xargs": {"last_func_call": "search"} if step else {}})
        assert st == 200
    assert daemon.stop() == 0
    db = sqlite3.connect(daemon.data_dir / "mnemo.db")
    programs = db.execute("SELECT id, job_id, ended_at FROM programs").fetchall()
    assert len(programs) == 1 and programs[0][1] == "job-42" and programs[0][2] is not None
    turns = db.execute("SELECT is_last_step, this_func_call, last_func_call FROM turns ORDER BY id").fetchall()
    assert turns == [(0, "search", None), (1, None, "search")]
