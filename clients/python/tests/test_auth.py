"""API keys: mnemod --api-key refuses the upgrade without the right bearer token."""

from __future__ import annotations

from typing import Callable

import pytest

from conftest import Daemon
from mnemo import AsyncClient, AuthenticationError, Client, ConnectionFailedError


async def test_wrong_or_missing_key_is_refused(start_daemon: Callable[..., Daemon],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = start_daemon("--api-key", "s3cret")
    for key in ("wrong", None):
        with pytest.raises(AuthenticationError) as info:
            await AsyncClient(daemon.url, api_key=key).connect()
        assert isinstance(info.value, ConnectionFailedError) and "401" in str(info.value)

    async with AsyncClient(daemon.url, api_key="s3cret") as client:
        assert (await client.create_session()).id

    monkeypatch.setenv("MNEMO_API_KEY", "s3cret")
    monkeypatch.setenv("MNEMO_URL", f"http://127.0.0.1:{daemon.port}")
    async with AsyncClient() as client:  # both from the environment
        await client.ping()


def test_sync_client_refused_too(start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon("--api-key", "s3cret")
    client = Client(daemon.url, api_key="nope")
    try:
        with pytest.raises(AuthenticationError):
            client.ping()
    finally:
        client.close()
