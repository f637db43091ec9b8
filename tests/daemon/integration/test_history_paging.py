"""session.get pages a history: a history far larger than one message can
carry is read back whole, page by page, on a connection that stays open.
A page holds at most `limit` messages and at most a quarter of
--max-frame-bytes of JSON, and always at least one message."""
import asyncio
import json

import pytest

from wsclient import Conn, new_session

FRAME = 64 * 1024
BUDGET = FRAME // 4


def run(coro):
    return asyncio.run(coro)


async def append(c, sid, contents):
    m = await c.rpc({"type": "message.append", "session_id": sid,
                     "messages": [{"role": "user", "content": x} for x in contents]})
    assert m["type"] == "message.appended", m
    return m["indices"]


async def get_raw(c, sid, **fields):
    """session.get's reply as text (its size is what the budget bounds) and parsed."""
    eid = await c.send({"type": "session.get", "session_id": sid, **fields})
    while True:
        text = await asyncio.wait_for(c.ws.recv(), 60)
        m = json.loads(text)
        if m.get("event_id") == eid:
            return text, m


async def read_back(c, sid, **fields):
    """Every page from the newest back, following `before`; the pages in the order read."""
    pages, before = [], None
    while True:
        _, page = await get_raw(c, sid, **fields, **({} if before is None else {"before": before}))
        assert page["type"] == "session.history", page
        pages.append(page)
        if not page["has_more"]:
            return pages
        before = page["messages"][0]["index"]


async def still_open(c):
    pong = await c.rpc({"type": "ping"})
    return pong["type"] == "pong" and c.ws.close_code is None


def test_messages_near_the_frame_size_come_one_to_a_page(daemon_factory):
    d = daemon_factory("--max-frame-bytes", str(FRAME))

    async def go():
        c = await Conn.open(d.ws)
        sid = await new_session(c)
        # Each append is one frame just under the bound; the history is 48
        # of them, far over what one page may hold.
        big = [f"{i:03d}" + "x" * (FRAME - 300) for i in range(48)]
        indices = []
        for x in big:
            indices += await append(c, sid, [x])
        assert indices == list(range(48))

        text, newest = await get_raw(c, sid, limit=1000)
        assert [m["index"] for m in newest["messages"]] == [47]  # one, though over the budget
        assert newest["has_more"] and newest["session"]["message_count"] == 48
        assert len(text) < FRAME + 1024  # the message's own frame, plus the reply's envelope

        pages = await read_back(c, sid, limit=1000)
        assert len(pages) == 48
        got = [m for p in reversed(pages) for m in p["messages"]]
        assert [m["index"] for m in got] == indices
        assert [m["content"] for m in got] == big
        assert all(p["session"]["message_count"] == 48 for p in pages)
        assert await still_open(c)
        await c.close()

    run(go())


def test_pages_are_cut_by_count_and_by_bytes(daemon_factory):
    d = daemon_factory("--max-frame-bytes", str(FRAME))

    async def go():
        c = await Conn.open(d.ws)
        sid = await new_session(c)
        # Small and large messages mixed: some pages end on `limit`, some on bytes.
        contents = [f"m{i}-" + ("y" * 5000 if i % 7 == 3 else "") for i in range(300)]
        indices = []
        for i in range(0, len(contents), 50):
            indices += await append(c, sid, contents[i:i + 50])
        assert indices == list(range(300))

        texts, pages, before = [], [], None
        while True:
            text, page = await get_raw(c, sid, limit=20, **({} if before is None else {"before": before}))
            texts.append(text)
            pages.append(page)
            n = len(page["messages"])
            assert 1 <= n <= 20
            if n > 1:
                assert len(text) <= BUDGET, (n, len(text))
            if n < 20 and page["has_more"]:
                # Cut by bytes: one more message would have passed the budget.
                assert len(text) + 5200 > BUDGET
            idx = [m["index"] for m in page["messages"]]
            assert idx == list(range(idx[0], idx[0] + n))  # ascending, contiguous
            assert page["has_more"] == (idx[0] > 0)
            if not page["has_more"]:
                break
            before = idx[0]
        got = [m for p in reversed(pages) for m in p["messages"]]
        assert [m["index"] for m in got] == indices
        assert [m["content"] for m in got] == contents
        assert any(len(p["messages"]) == 20 for p in pages)
        assert any(len(p["messages"]) < 20 and p["has_more"] for p in pages)

        # Defaults: the newest 100 (here cut by bytes), before past the end,
        # before 0, and a page that starts in the middle.
        _, default = await get_raw(c, sid)
        assert default["messages"][-1]["index"] == 299 and default["has_more"]
        _, past = await get_raw(c, sid, limit=3, before=10**6)
        assert [m["index"] for m in past["messages"]] == [297, 298, 299]
        _, none = await get_raw(c, sid, before=0)
        assert none["messages"] == [] and not none["has_more"]
        _, first = await get_raw(c, sid, limit=2, before=2)
        assert [m["index"] for m in first["messages"]] == [0, 1] and not first["has_more"]
        assert await still_open(c)
        await c.close()

    run(go())


def test_a_history_over_the_outbound_bound_is_readable(daemon):
    """The finding: a history past 16 MiB made every session.get one message
    over the connection's outbound bound, and the socket was closed (1013)."""
    async def go():
        c = await Conn.open(daemon.ws)
        sid = await new_session(c)
        chunk = "z" * (3 << 20)  # under the default 4 MiB frame
        for i in range(6):  # 18 MiB in all
            await append(c, sid, [f"{i}:" + chunk])
        pages = await read_back(c, sid)
        got = [m for p in reversed(pages) for m in p["messages"]]
        assert [m["index"] for m in got] == list(range(6))
        assert [m["content"][:2] for m in got] == [f"{i}:" for i in range(6)]
        assert all(len(m["content"]) == len(chunk) + 2 for m in got)
        assert await still_open(c)
        await c.close()

    run(go())


@pytest.mark.parametrize("fields,field", [
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"limit": 2.5}, "limit"),
    ({"limit": "10"}, "limit"),
    ({"before": -1}, "before"),
    ({"before": 1.5}, "before"),
    ({"before": "3"}, "before"),
    ({"before": 2 ** 53}, "before"),
])
def test_bad_page_fields_are_invalid_field(daemon, fields, field):
    async def go():
        c = await Conn.open(daemon.ws)
        sid = await new_session(c)
        err = await c.rpc({"type": "session.get", "session_id": sid, **fields})
        assert err["type"] == "error" and err["code"] == "invalid_field", err
        assert err["field"] == field and field in err["message"]
        assert await still_open(c)
        await c.close()

    run(go())
