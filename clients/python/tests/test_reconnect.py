"""Reconnecting: the daemon restarts under a client, which reconnects and resumes its sessions."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from conftest import Daemon
from mnemo import AsyncClient, ConnectionFailedError


async def test_restart_reconnects_and_resumes(start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon()
    async with AsyncClient(daemon.url) as client:
        session = await client.create_session(system="Remember me.")
        acked = await client.append(session.id, "first", "second")
        await asyncio.to_thread(daemon.restart)  # SIGTERM, then the same port and data dir

        # The next call reconnects, resumes the session, and finds every acknowledged message.
        history = await client.get_session(session.id)
        assert client.reconnects == 1
        assert [m.content for m in history.messages] == ["first", "second"]
        assert [m.index for m in history.messages] == acked.indices
        assert history.session.system == "Remember me."
        response = await client.respond(session.id, sampling={"max_tokens": 4})
        assert response.finish_reason in ("stop", "length")

        # A second restart: the client notices the drop by itself, and a write goes through.
        await asyncio.to_thread(daemon.restart)
        for _ in range(100):
            if not client.connected:
                break
            await asyncio.sleep(0.01)
        assert not client.connected
        ack = await client.append(session.id, "third")
        assert ack.message_count == 4 and client.reconnects == 2


async def test_without_reconnect_calls_fail(start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon()
    async with AsyncClient(daemon.url, reconnect=False) as client:
        await client.ping()
        await asyncio.to_thread(daemon.restart)
        with pytest.raises(ConnectionFailedError):
            await client.ping()
