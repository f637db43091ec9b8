"""Reading a history page by page against a real mnemod: get_history (one page), history_pages,
and get_session, which reassembles a history longer than one page."""

from __future__ import annotations

from typing import Callable

import pytest

from conftest import Daemon
from mnemo import AsyncClient, Client, InvalidFieldError, Message


async def test_pages_by_count(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        session = await client.create_session()
        await client.append(session.id, *[f"m{i}" for i in range(250)])

        newest = await client.get_history(session.id, limit=100)
        assert [m.index for m in newest.messages] == list(range(150, 250))
        assert newest.has_more and newest.session.message_count == 250
        middle = await client.get_history(session.id, limit=100, before=150)
        assert [m.content for m in middle.messages] == [f"m{i}" for i in range(50, 150)]
        first = await client.get_history(session.id, limit=100, before=50)
        assert [m.index for m in first.messages] == list(range(50)) and not first.has_more

        pages = [p async for p in client.history_pages(session.id, limit=100)]
        assert [len(p.messages) for p in pages] == [100, 100, 50]
        # The daemon's default page is 100 messages; get_session reads them all.
        assert len((await client.get_history(session.id)).messages) == 100
        history = await client.get_session(session.id)
        assert [m.content for m in history.messages] == [f"m{i}" for i in range(250)]
        assert history.session.message_count == 250


async def test_empty_history_is_one_empty_page(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        session = await client.create_session()
        pages = [p async for p in client.history_pages(session.id)]
        assert len(pages) == 1 and pages[0].messages == [] and not pages[0].has_more
        assert (await client.get_session(session.id)).messages == []


async def test_bad_page_arguments_are_invalid_field(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        session = await client.create_session()
        for kwargs, field in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"before": -1}, "before")):
            with pytest.raises(InvalidFieldError) as err:
                await client.get_history(session.id, **kwargs)
            assert err.value.field == field
        assert client.connected


async def test_large_messages_are_cut_by_bytes(start_daemon: Callable[..., Daemon]) -> None:
    # A page holds at most a quarter of --max-frame-bytes (4 KiB here): messages of 3 KiB come
    # one or two to a page whatever the limit, and the connection stays open throughout.
    d = start_daemon("--max-frame-bytes", "16384")
    async with AsyncClient(d.url) as client:
        session = await client.create_session()
        contents = [f"{i:03d}" + "x" * 1500 for i in range(40)]
        for i in range(0, len(contents), 4):
            await client.append(session.id, *[Message.user(c) for c in contents[i:i + 4]])
        page = await client.get_history(session.id, limit=1000)
        assert 1 <= len(page.messages) <= 2 and page.has_more
        history = await client.get_session(session.id)
        assert [m.content for m in history.messages] == contents
        assert [m.index for m in history.messages] == list(range(40))
        assert client.connected and client.reconnects == 0


def test_sync_client_pages(daemon: Daemon) -> None:
    with Client(daemon.url) as client:
        session = client.create_session()
        client.append(session.id, *[f"s{i}" for i in range(5)])
        pages = list(client.history_pages(session.id, limit=2))
        assert [[m.index for m in p.messages] for p in pages] == [[3, 4], [1, 2], [0]]
        assert client.get_history(session.id, limit=1, before=1).messages[0].content == "s0"
        assert [m.content for m in client.get_session(session.id).messages] == [f"s{i}" for i in range(5)]
